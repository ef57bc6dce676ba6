"""The HTTP client under `twilio.rest.Client`: aiohttp, one pooled session per event loop.

Why our own subclass of twilio's `AsyncTwilioHttpClient`:
- `TWILIO_API_URL` (the simulator, a test peer): the twilio client has no base-URL setting and
  `client.api.base_url` is mangled once an edge/region is set, so scheme and host are rewritten
  here, after the client has built the URL.
- Exactly-once sending needs to know whether a failed request *left*: a connect error can be
  retried blindly, a timeout or reset after the request was written is ambiguous. aiohttp's
  tracing tells us when the request headers went out; `TwilioTransportError.sent` carries it.
- The twilio client turns error responses into `TwilioRestException` without the headers, so
  `Retry-After` of a 429 would be lost; `capture_response()` keeps it for the caller.
- aiohttp deprecates `auth=`; the Authorization header is set directly instead.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response

_logger = logging.getLogger(__name__)


class TwilioTransportError(Exception):
    """The request got no HTTP answer. `sent`: the request was written before it failed."""

    def __init__(self, message: str, *, sent: bool, timeout: bool) -> None:
        super().__init__(message)
        self.sent = sent
        self.timeout = timeout


@dataclass
class ResponseInfo:
    """What the last response seen inside `capture_response()` carried besides its body."""

    status: int | None = None
    retry_after: float | None = None


_capture: contextvars.ContextVar[ResponseInfo | None] = contextvars.ContextVar(
    "twilio_response_info", default=None
)


@contextmanager
def capture_response() -> Iterator[ResponseInfo]:
    """Collect the status and Retry-After of responses to requests made inside the block.

    A mutable holder in a context variable: safe with many sends running concurrently, since
    each asyncio task has its own context.
    """
    info = ResponseInfo()
    token = _capture.set(info)
    try:
        yield info
    finally:
        _capture.reset(token)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or garbage."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


async def _on_headers_sent(
    session: aiohttp.ClientSession, ctx: SimpleNamespace, params: Any
) -> None:
    flag = ctx.trace_request_ctx
    if isinstance(flag, dict):
        flag["sent"] = True


class RelayTwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """Async HTTP client for `twilio.rest.Client(http_client=...)`.

    base_url: `TWILIO_API_URL` (e.g. "http://127.0.0.1:8025"); None sends to Twilio itself.
    timeout: seconds for the whole request; past it the send is *ambiguous*.
    connect_timeout: seconds to get a connection (pool wait included); the request has not
        left yet, so this is a plain transient error.
    limit: concurrent connections per session (aiohttp's TCPConnector limit).

    One `aiohttp.ClientSession` per event loop, created on first use and reused. Share one
    instance between the SMS and voice channels of a process; `await close()` on the loop
    that used it before that loop ends.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        limit: int = 100,
        logger: logging.Logger = _logger,
    ) -> None:
        # pool_connections=False: the parent would create a ClientSession here, outside any
        # running loop; ours are made lazily, per loop.
        super().__init__(pool_connections=False, timeout=timeout, logger=logger)
        self._base = urlsplit(base_url.rstrip("/")) if base_url else None
        if self._base is not None and not (self._base.scheme and self._base.netloc):
            raise ValueError(f"base_url must be scheme://host[:port], got {base_url!r}")
        self._connect_timeout = connect_timeout
        self._limit = limit
        self._sessions: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, aiohttp.ClientSession
        ] = weakref.WeakKeyDictionary()

    def rewrite(self, url: str) -> str:
        """The URL with scheme and host (and port) replaced by base_url's."""
        if self._base is None:
            return url
        parts = urlsplit(url)
        path = self._base.path + parts.path
        return urlunsplit((self._base.scheme, self._base.netloc, path, parts.query, ""))

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            trace = aiohttp.TraceConfig()
            trace.on_request_headers_sent.append(_on_headers_sent)
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit),
                timeout=aiohttp.ClientTimeout(total=self.timeout, connect=self._connect_timeout),
                trace_configs=[trace],
            )
            self._sessions[loop] = session
        return session

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Send one request; raise `TwilioTransportError` when no HTTP answer came back."""
        headers = dict(headers or {})
        if auth is not None:
            credentials = f"{auth[0]}:{auth[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        url = self.rewrite(url)
        flag: dict[str, bool] = {"sent": False}
        kwargs: dict[str, Any] = {
            "params": params,
            "data": data,
            "headers": headers,
            "allow_redirects": allow_redirects,
            "trace_request_ctx": flag,
        }
        if timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout, connect=self._connect_timeout)
        try:
            async with self._session().request(method.upper(), url, **kwargs) as response:
                text = await response.text()
                status, response_headers = response.status, response.headers
        except TimeoutError as exc:  # aiohttp's timeouts subclass TimeoutError
            sent = flag["sent"] and not isinstance(exc, aiohttp.ConnectionTimeoutError)
            raise TwilioTransportError(
                f"timeout: {type(exc).__name__}", sent=sent, timeout=True
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            sent = flag["sent"] and not isinstance(exc, aiohttp.ClientConnectorError)
            raise TwilioTransportError(
                f"{type(exc).__name__}: {exc}", sent=sent, timeout=False
            ) from exc
        info = _capture.get()
        if info is not None:
            info.status = status
            info.retry_after = parse_retry_after(response_headers.get("Retry-After"))
        # No request/response logging here: URLs carry the account SID and bodies carry
        # phone numbers; the channels log masked summaries instead.
        return Response(status, text, response_headers)

    async def close(self) -> None:
        """Close the session of the running loop (sessions of other loops are left alone)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        session = self._sessions.pop(loop, None)
        if session is not None:
            await session.close()

    async def __aexit__(self, *excinfo: object) -> None:
        await self.close()
