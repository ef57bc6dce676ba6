"""Sending a batch of deliveries: claim, pace, send concurrently, record in batched writes.

Exactly one provider request per planned delivery as far as we can know: a row is claimed with
a conditional UPDATE before it is sent (a redelivered task finds nothing left to claim), and
each result with its provider id is written as it comes (`_Recorder`: every write takes all
results that arrived during the one before), not when the chunk is done. Rows claimed by a
worker that died are reclaimed after the claim lease; the only possible duplicates are the
requests sent whose result was not yet written. A send holds its slot until its result is
written, so those are at most `max_in_flight` per process, and in practice the provider's
rate times its latency (issue 15).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from channels.base import (
    ChannelError,
    EmailChannel,
    EmailMessage,
    Receipt,
    SmsChannel,
    SmsMessage,
    VoiceCall,
    VoiceChannel,
)
from channels.masking import mask_email, mask_phone
from relay.delivery.ratelimit import RateLimiter
from relay.delivery.states import ACCEPTED, QUEUED, SENDING, UNKNOWN, state_for
from relay.delivery.tracking import mark_not_reached
from relay.models import Delivery

log = logging.getLogger(__name__)

MAX_TRIES = 8


@dataclass
class Senders:
    """What a worker process sends with; built once per process (relay.delivery.runtime)."""

    sms: SmsChannel
    voice: VoiceChannel
    email: EmailChannel
    limiters: dict[str, RateLimiter]
    public_url: str
    claim_lease: timedelta = timedelta(seconds=60)
    # Provider requests one process has open at once: what a SIGKILL can send twice. Twilio
    # answers in ~0.2-0.5 s, so 25 is more than its default 10/s (or 40/s bought) needs.
    max_in_flight: int = 25


@dataclass
class BatchResult:
    sent: int = 0
    failed: int = 0
    ambiguous: int = 0
    retry: list[int] = field(default_factory=list)  # transient failures, back to queued
    retry_after: float | None = None  # the provider asked us to wait this long

    def merge(self, other: BatchResult) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.ambiguous += other.ambiguous
        self.retry.extend(other.retry)
        if other.retry_after is not None:
            self.retry_after = max(self.retry_after or 0.0, other.retry_after)


@dataclass(frozen=True)
class _Claimed:
    id: int
    recipient_id: int
    channel: str
    address: str
    subject: str | None
    body: str
    html: str | None
    segments: int
    tries: int


def chunk_size(rate: float) -> int:
    """Rows claimed at once: about two seconds of sending at the provider's rate, so a claim
    never outlives its lease and a kill loses little, but never so few that we idle."""
    return max(5, min(100, int(rate * 2)))


def claim(
    sessions: sessionmaker[Session], ids: Sequence[int], now: datetime, lease: timedelta
) -> list[_Claimed]:
    stale = now - lease
    with sessions.begin() as session:
        rows = session.execute(
            update(Delivery)
            .where(
                Delivery.id.in_(ids),
                or_(
                    Delivery.state == QUEUED,
                    (Delivery.state == SENDING) & (Delivery.claimed_at < stale),
                ),
            )
            .values(state=SENDING, claimed_at=now, tries=Delivery.tries + 1)
            .returning(
                Delivery.id,
                Delivery.recipient_id,
                Delivery.channel,
                Delivery.address,
                Delivery.subject,
                Delivery.body,
                Delivery.html,
                Delivery.segments,
                Delivery.tries,
            )
        ).all()
    return sorted((_Claimed(*row) for row in rows), key=lambda c: c.id)


def _masked(row: _Claimed) -> str:
    return mask_email(row.address) if row.channel == "email" else mask_phone(row.address)


def _callback(senders: Senders, path: str, delivery_id: int) -> str:
    # The delivery id rides in the callback URL, so a callback reconciles a send whose
    # response we never saw (ambiguous timeout) — the URL is signed by Twilio as a whole.
    return f"{senders.public_url}/webhooks/twilio/{path}?d={delivery_id}"


def _tokens(row: _Claimed) -> int:
    """What a message costs at the provider's limit: segments for SMS, one otherwise."""
    return row.segments if row.channel == "sms" else 1


async def _paced(
    senders: Senders,
    rows: Sequence[_Claimed],
    done: Callable[[_Claimed, object], Awaitable[None]],
) -> None:
    """Send the rows concurrently, each started only once its tokens are taken, in order, at
    most `max_in_flight` at a time; `done(row, outcome)` as each ends (a Receipt or the
    exception, like gather(return_exceptions)), awaited before the send's slot is free: a
    request counts as in flight until its result is written, so a kill can re-send at most
    `max_in_flight` per process (when the slot was free at the answer, the next requests went
    out while those results waited for their write: 75 re-sent after a kill for a bound of 50
    in ops/bench).

    Consecutive rows share one bucket call, as many as fit in the bucket's burst: at a slow
    provider that is one message per call, as before; at a fast one it is one Redis round trip
    for a whole chunk instead of one per message (a quarter of a worker's time was spent on
    them). Any 1-second window still holds at most rate + burst tokens.
    """
    # A slot is taken before the tokens, so a granted token is spent at once: sends held back
    # by the cap must not leave together later, above the provider's rate.
    slots = asyncio.Semaphore(senders.max_in_flight)

    async def send(row: _Claimed) -> None:
        try:
            try:
                outcome: object = await _send_one(senders, row)
            except Exception as exc:
                outcome = exc
            await done(row, outcome)
        finally:
            slots.release()

    started: list[asyncio.Future[None]] = []
    i = 0
    while i < len(rows):
        limiter = senders.limiters[rows[i].channel]
        j, tokens = i + 1, _tokens(rows[i])
        while (
            j < len(rows)
            and j - i < senders.max_in_flight
            and rows[j].channel == rows[i].channel
            and tokens + _tokens(rows[j]) <= limiter.burst
        ):
            tokens += _tokens(rows[j])
            j += 1
        for _ in range(j - i):
            await slots.acquire()
        try:
            await limiter.acquire(tokens)
        except Exception as exc:  # the limiter's store is down: these rows are not sent
            for _ in range(j - i):
                slots.release()
            for row in rows[i:]:
                done(row, exc)
            break
        started += [asyncio.ensure_future(send(row)) for row in rows[i:j]]
        i = j
    await asyncio.gather(*started)


async def _send_one(senders: Senders, row: _Claimed) -> Receipt:
    if row.channel == "sms":
        return await senders.sms.send_sms(
            SmsMessage(row.address, row.body, _callback(senders, "status", row.id))
        )
    if row.channel == "voice":
        return await senders.voice.place_call(
            VoiceCall(
                to=row.address,
                twiml_url=_callback(senders, "voice/twiml", row.id),
                status_callback=_callback(senders, "voice/status", row.id),
            )
        )
    return await senders.email.send_email(
        EmailMessage(
            to=row.address,
            subject=row.subject or "",
            text=row.body,
            html=row.html,
            headers={"X-Relay-Delivery": str(row.id)},
        )
    )


async def send_chunk(
    sessions: sessionmaker[Session], senders: Senders, ids: Sequence[int]
) -> BatchResult:
    rows = claim(sessions, ids, datetime.now(UTC), senders.claim_lease)
    result = BatchResult()
    if not rows:
        return result
    recorder = _Recorder(sessions)
    try:
        await _paced(
            senders, rows, lambda row, outcome: recorder.add(_result(senders, row, outcome, result))
        )
    finally:  # what was sent before a failure or a cancel is written all the same
        await recorder.close()
    return result


@dataclass
class _Outcome:
    values: dict[str, Any]
    not_reached: int | None = None  # the recipient, when this send failed for good


def _result(senders: Senders, row: _Claimed, outcome: object, result: BatchResult) -> _Outcome:
    """What one send's outcome writes, counted into `result`."""
    finished = datetime.now(UTC)
    values: dict[str, Any] = {
        "b_id": row.id,
        "b_state": None,
        "b_provider": None,
        "b_pid": None,
        "b_code": None,
        "b_msg": None,
        "b_sent": None,
        "b_segments": row.segments,
        "b_finished": None,
    }
    if isinstance(outcome, Receipt):
        values |= {
            "b_state": state_for(outcome.outcome) if outcome.outcome else ACCEPTED,
            "b_provider": outcome.provider,
            "b_pid": outcome.provider_id,
            "b_sent": finished,
            "b_segments": outcome.segments or row.segments,
        }
        result.sent += 1
    elif isinstance(outcome, ChannelError):
        values |= {"b_code": outcome.code, "b_msg": str(outcome)[:500]}
        if outcome.ambiguous:
            values["b_state"] = UNKNOWN
            result.ambiguous += 1
            log.warning(
                "delivery %s to %s: outcome unknown (%s)",
                row.id,
                _masked(row),
                outcome,
                extra={"delivery_id": row.id},
            )
        elif outcome.permanent or row.tries >= MAX_TRIES:
            values |= {"b_state": "failed", "b_finished": finished}
            result.failed += 1
            return _Outcome(values, not_reached=row.recipient_id)
        else:
            values["b_state"] = QUEUED
            result.retry.append(row.id)
            if outcome.retry_after is not None:
                result.retry_after = max(result.retry_after or 0.0, outcome.retry_after)
                # Every worker sharing this provider backs off, not just this batch.
                senders.limiters[row.channel].penalize(outcome.retry_after)
    else:
        # A bug or an unexpected library error: keep the row for a retry, log loudly.
        log.error("delivery %s: unexpected %r", row.id, outcome, extra={"delivery_id": row.id})
        values |= {"b_state": QUEUED, "b_code": "internal", "b_msg": repr(outcome)[:500]}
        result.retry.append(row.id)
    return _Outcome(values)


class _Recorder:
    """Writes send results as they come. One write at a time, in a thread so sending goes on
    meanwhile; each write takes every result that arrived during the one before (group
    commit): at Twilio's pace a result is durable a few milliseconds after its answer, at a
    high rate the writes grow instead of multiplying. A write that fails (the database gone)
    stops the recording and is raised at close(): those rows stay `sending` and the lease
    reclaims them, as before."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._pending: list[tuple[_Outcome, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._stopped = False
        self._task = asyncio.ensure_future(self._run())

    def add(self, outcome: _Outcome) -> asyncio.Future[None]:
        """Queue the result; the future is done once it is written (or never will be: the
        recording stopped)."""
        written = asyncio.get_running_loop().create_future()
        if self._stopped:
            written.set_result(None)
        else:
            self._pending.append((outcome, written))
            self._wake.set()
        return written

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        await self._task

    async def _run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                batch, self._pending = self._pending, []
                if batch:
                    try:
                        await asyncio.to_thread(self._write, [outcome for outcome, _ in batch])
                    finally:
                        _release(batch)
                if self._closing and not self._pending:
                    return
        except BaseException:
            self._stopped = True
            _release(self._pending)
            self._pending = []
            raise

    def _write(self, batch: list[_Outcome]) -> None:
        not_reached = [o.not_reached for o in batch if o.not_reached is not None]
        with self._sessions.begin() as session:
            _record(session, [o.values for o in batch])
            if not_reached:
                mark_not_reached(session, not_reached, datetime.now(UTC))


def _release(batch: list[tuple[_Outcome, asyncio.Future[None]]]) -> None:
    for _, written in batch:
        if not written.done():
            written.set_result(None)


def _record(session: Session, updates: list[dict[str, Any]]) -> None:
    """One executemany for the results. Only rows still `sending` take the new state: a fast
    status callback may already have moved a row further, and it must stay there."""
    still_sending = Delivery.state == SENDING
    stmt = (
        update(Delivery)
        .where(Delivery.id == bindparam("b_id"))
        .values(
            state=case((still_sending, bindparam("b_state")), else_=Delivery.state),
            provider=bindparam("b_provider"),
            provider_id=case(
                (Delivery.provider_id.is_(None), bindparam("b_pid")), else_=Delivery.provider_id
            ),
            error_code=bindparam("b_code"),
            error_message=bindparam("b_msg"),
            sent_at=bindparam("b_sent"),
            segments=bindparam("b_segments"),
            finished_at=case((still_sending, bindparam("b_finished")), else_=Delivery.finished_at),
        )
        .execution_options(synchronize_session=False)
    )
    session.connection().execute(stmt, updates)


async def send_batch(
    sessions: sessionmaker[Session], senders: Senders, channel: str, ids: Sequence[int]
) -> BatchResult:
    """Send the batch chunk by chunk, in the order given (coverage first)."""
    total = BatchResult()
    size = chunk_size(senders.limiters[channel].rate)
    for start in range(0, len(ids), size):
        total.merge(await send_chunk(sessions, senders, ids[start : start + size]))
        if total.retry_after:
            # The provider is throttling us: stop here. The task retries after Retry-After
            # with the same ids; the rows not yet claimed are still queued and go then.
            break
    return total


def queued_ids(session: Session, alert_id: int) -> dict[str, list[int]]:
    """Due deliveries of an alert per channel, in coverage-first order."""
    rows = session.execute(
        select(Delivery.channel, Delivery.id)
        .where(Delivery.alert_id == alert_id, Delivery.state == QUEUED)
        .order_by(Delivery.position)
    ).all()
    by_channel: dict[str, list[int]] = {}
    for channel, delivery_id in rows:
        by_channel.setdefault(channel, []).append(delivery_id)
    return by_channel
