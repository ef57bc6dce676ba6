"""Requests the simulator makes to the relay, as Twilio makes them.

Every request to a Twilio webhook carries X-Twilio-Signature, computed by the twilio library
itself over the exact URL called (plus, for POST, the form fields) — so a relay that checks
signatures accepts these and rejects anything else. A 5xx or a failed connection is retried
with backoff, as Twilio does; every attempt is logged with the status it got.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
from twilio.request_validator import RequestValidator

from .log import Kind, LogRecord, SimLog
from .scheduler import Scheduler

RETRY_BACKOFF = (1.0, 2.0, 4.0)  # simulated seconds before each retry
REQUEST_TIMEOUT = 15.0  # Twilio gives a webhook 15 s


@dataclass(frozen=True)
class Reply:
    status: int  # 0 when no HTTP answer came back
    text: str
    url: str  # the URL finally answered (after redirects, for link GETs)
    cookies: Mapping[str, str] | None = None
    record: LogRecord | None = None  # the log entry of the (last) attempt


@dataclass(frozen=True)
class Party:
    """Who and what a request is about, for the log."""

    to: str | None = None
    from_: str | None = None
    sid: str | None = None
    body: str | None = None
    segments: int = 0
    answers: Mapping[str, str] | None = None  # situation-report answers the request carries
    reminded: bool = False  # sent in answer to a reminder


class Courier:
    def __init__(self, auth_token: str, log: SimLog, scheduler: Scheduler) -> None:
        self._signer = RequestValidator(auth_token)
        self._log = log
        self._scheduler = scheduler
        self._session: aiohttp.ClientSession | None = None
        self._phones: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # One session for everything: connection reuse matters at thousands of callbacks/s.
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            connector=aiohttp.TCPConnector(limit=200),
            cookie_jar=aiohttp.DummyCookieJar(),  # recipients are independent phones
        )
        # Link taps come from the recipients' own phones: a new connection each, never a
        # pooled one. Reusing a pooled connection raced uvicorn closing it for being idle
        # and lost about one tap in a hundred (a race no real phone population has).
        self._phones = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            connector=aiohttp.TCPConnector(limit=200, force_close=True),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        for session in (self._session, self._phones):
            if session is not None:
                await session.close()
        self._session = self._phones = None

    async def signed(
        self,
        kind: Kind,
        url: str,
        params: Mapping[str, str],
        party: Party,
        *,
        method: str = "POST",
        retry: bool = True,
    ) -> Reply:
        """Send a Twilio webhook request; retried on 5xx/connection errors when `retry`."""
        params = dict(params)
        method = method.upper()
        if method == "GET":
            target = url + ("&" if "?" in url else "?") + urlencode(params)
            signature = self._signer.compute_signature(target, {})
            form = None
        else:
            target = url
            signature = self._signer.compute_signature(url, params)
            form = params
        headers = {
            "X-Twilio-Signature": signature,
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),  # the same on every retry
            "User-Agent": "TwilioProxy/1.1",
        }
        attempts = 1 + (len(RETRY_BACKOFF) if retry else 0)
        reply = Reply(0, "", target)
        for attempt in range(attempts):
            sent = time.monotonic()
            reply = await self._send(method, target, form, headers)
            last = attempt == attempts - 1
            transient = reply.status == 0 or reply.status >= 500
            result = "ok" if not transient else ("failed" if last else "retry")
            reply = self._record(kind, target, params, party, reply, result, sent)
            if not transient or last:
                break
            await self._scheduler.sleep(RETRY_BACKOFF[attempt])
        return reply

    async def plain(
        self,
        kind: Kind,
        method: str,
        url: str,
        party: Party,
        *,
        form: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
    ) -> Reply:
        """An unsigned request, as a phone's browser makes when a recipient taps a link."""
        assert self._phones is not None, "simulator not started"
        sent = time.monotonic()
        reply = await self._send(
            method,
            url,
            form,
            {},
            cookies=cookies,
            redirects=method == "GET",
            session=self._phones,
        )
        result = "ok" if 200 <= reply.status < 400 else "failed"
        return self._record(kind, url, dict(form or {}), party, reply, result, sent)

    async def _send(
        self,
        method: str,
        url: str,
        form: Mapping[str, str] | None,
        headers: Mapping[str, str],
        *,
        cookies: Mapping[str, str] | None = None,
        redirects: bool = False,
        session: aiohttp.ClientSession | None = None,
    ) -> Reply:
        session = session or self._session
        assert session is not None, "simulator not started"
        body = None
        if form is not None:
            # Encoded here, not by aiohttp's FormData: that costs more than the rest of a
            # callback, and callbacks run at thousands a second in the benchmarks.
            body = urlencode(form).encode()
            headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        try:
            async with session.request(
                method,
                url,
                data=body,
                headers=headers,
                cookies=cookies,
                allow_redirects=redirects,
            ) as response:
                text = await response.text(errors="replace")
                jar = {name: morsel.value for name, morsel in response.cookies.items()}
                return Reply(response.status, text, str(response.url), jar)
        except (TimeoutError, aiohttp.ClientError) as exc:
            return Reply(0, f"{type(exc).__name__}: {exc}", url)

    def _record(
        self,
        kind: Kind,
        url: str,
        params: dict[str, str],
        party: Party,
        reply: Reply,
        result: str,
        sent: float,
    ) -> Reply:
        record = LogRecord(
            kind=kind,
            to=party.to,
            from_=party.from_,
            sid=party.sid,
            body=party.body,
            segments=party.segments,
            response=reply.text,
            status=reply.status,
            result=result,
            url=url,
            params=params,
            answers=dict(party.answers or {}),
            reminded=party.reminded,
            sent_mono=sent,
        )
        self._log.append(record)
        return dataclasses.replace(reply, record=record)
