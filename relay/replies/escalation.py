"""Cascade escalation (SPEC 4.1): SMS and email first; a call if there is no acknowledgement
within the first delay; then the organization's next contact, and — at the same time — one
more call to a contact whose first call met nobody (no answer, a machine, busy, failed); then
the ward staff are told the organization is still silent.

The second call runs alongside the next contact rather than before it: holding the alternate
back for it would delay every organization whose first contact is away for long, while the
second call only costs a call to those the first one missed (ops/REACH.md).

Timing lives in the database (`Recipient.next_action_at`), never in Celery countdowns. A tick
claims due recipients (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite transactions are already
exclusive), moves each one step, and writes the sends to the outbox in the same transaction.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from relay import audit
from relay.delivery import outbox
from relay.delivery.dispatch import BATCH_SIZE
from relay.delivery.states import (
    ANSWERED,
    COMPLETED,
    FINAL,
    NOT_REACHED,
    PLANNED,
    QUEUED,
    SENDING,
)
from relay.models import Alert, Delivery, Recipient

log = logging.getLogger(__name__)

# Steps of one contact, each due at `next_action_at`:
#   STEP_FIRST  SMS/email sent               -> place the call
#   STEP_CALL   call placed                  -> start the next contact; second call pending
#   STEP_RECALL next contact started         -> call again if the first call met nobody
#   STEP_DONE   nothing left for this contact (due once more after a second call, so the
#               organization is reported silent only after that call had its chance)
STEP_FIRST, STEP_CALL, STEP_RECALL, STEP_DONE = 0, 1, 2, 3
REACHED_CALL = (ANSWERED, COMPLETED)  # a person took the call: no second call
# A call whose end we have not heard of is waited for this long at most before the
# organization is reported silent (a lost status callback must not hold the report for ever).
CALL_WAIT = timedelta(minutes=5)


def _due(session: Session, now: datetime, limit: int) -> list[Recipient]:
    stmt = (
        select(Recipient)
        .join(Alert, Alert.id == Recipient.alert_id)
        .where(
            Recipient.next_action_at <= now,
            Recipient.acknowledged_at.is_(None),
            Alert.state == "active",
            Alert.mode == "cascade",
        )
        .order_by(Recipient.next_action_at, Recipient.position)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=Recipient)
    return list(session.scalars(stmt))


def _queue(
    session: Session, recipient: Recipient, channels: set[str] | None, now: datetime
) -> list[Delivery]:
    stmt = select(Delivery).where(Delivery.recipient_id == recipient.id, Delivery.state == PLANNED)
    queued = [d for d in session.scalars(stmt) if channels is None or d.channel in channels]
    for delivery in queued:
        delivery.state = QUEUED
        delivery.due_at = now
    return queued


def first_step(channels: set[str], escalation: dict[str, int]) -> tuple[set[str], int, int]:
    """For a contact reachable on `channels`: what to send now, the step that is, and seconds
    until the next step. SMS and email first; a contact with only a phone is called at once."""
    now_channels = {c for c in channels if c != "voice"} or set(channels)
    voice_after = escalation.get("voice_after_s", 300)
    next_contact_after = escalation.get("next_contact_after_s", 600)
    if now_channels == {"voice"}:
        return now_channels, STEP_CALL, max(next_contact_after - voice_after, 0)
    return now_channels, STEP_FIRST, voice_after


def start_contact(
    session: Session, alert: Alert, recipient: Recipient, now: datetime
) -> list[Delivery]:
    planned = list(
        session.scalars(
            select(Delivery).where(Delivery.recipient_id == recipient.id, Delivery.state == PLANNED)
        )
    )
    now_channels, recipient.step, delay = first_step({d.channel for d in planned}, alert.escalation)
    recipient.state = "active"
    recipient.next_action_at = now + timedelta(seconds=delay)
    return _queue(session, recipient, now_channels, now)


def _next_contact(session: Session, recipient: Recipient) -> Recipient | None:
    return session.scalars(
        select(Recipient)
        .where(
            Recipient.alert_id == recipient.alert_id,
            Recipient.organization_id == recipient.organization_id,
            Recipient.state == "waiting",
        )
        .order_by(Recipient.position)
        .limit(1)
    ).first()


def _calls(session: Session, recipient: Recipient) -> list[Delivery]:
    stmt = select(Delivery).where(
        Delivery.recipient_id == recipient.id, Delivery.channel == "voice"
    )
    return list(session.scalars(stmt.order_by(Delivery.attempt)))


def _call_gap(alert: Alert) -> timedelta:
    """How long a call is given before the cascade moves on (no answer ends it sooner)."""
    return timedelta(seconds=first_step({"voice"}, alert.escalation)[2])


def _recall_at(alert: Alert, calls: list[Delivery], now: datetime) -> datetime | None:
    """When to call this contact again, or None: no second call is due (none configured, no
    call placed, a person took it, or it was already the second)."""
    recall_after = alert.escalation.get("recall_after_s")
    if recall_after is None or len(calls) != 1 or calls[0].state in REACHED_CALL:
        return None
    placed = calls[0].sent_at or calls[0].due_at or now
    return max(now, placed + timedelta(seconds=recall_after))


def _second_call(session: Session, first: Delivery, now: datetime) -> Delivery:
    call = Delivery(
        alert_id=first.alert_id, recipient_id=first.recipient_id, channel="voice", attempt=2,
        position=first.position, address=first.address, language=first.language,
        subject=first.subject, body=first.body, segments=first.segments, state=QUEUED,
        due_at=now, created_at=now,
    )  # fmt: skip
    session.add(call)
    return call


def step(session: Session, alert: Alert, recipient: Recipient, now: datetime) -> list[Delivery]:
    """Move one due recipient one step; return the deliveries it queued."""
    if recipient.step == STEP_FIRST:
        calls = _queue(session, recipient, {"voice"}, now)
        if calls:
            recipient.step = STEP_CALL
            recipient.next_action_at = now + _call_gap(alert)
            return calls
    queued: list[Delivery] = []
    if recipient.step in (STEP_FIRST, STEP_CALL):
        following = _next_contact(session, recipient)
        if following is not None:
            queued = start_contact(session, alert, following, now)
        recall_at = _recall_at(alert, _calls(session, recipient), now)
        if recall_at is not None:
            recipient.step, recipient.next_action_at = STEP_RECALL, recall_at
            return queued
    elif recipient.step == STEP_RECALL:
        calls = _calls(session, recipient)
        recall_at = _recall_at(alert, calls, now)
        if recall_at is not None and recall_at > now:
            # Brought forward by another channel's failure (a late bounce): not yet.
            recipient.next_action_at = recall_at
            return []
        if recall_at is not None and calls[0].state in NOT_REACHED:
            recipient.step, recipient.next_action_at = STEP_DONE, now + _call_gap(alert)
            return [_second_call(session, calls[0], now)]
    if not queued and _call_under_way(_calls(session, recipient), now):
        # The person may be answering right now (a spoken answer takes longer than the gap
        # on a slow line): look again shortly rather than report them silent; the call's end
        # (a status callback) brings the look forward.
        recheck = min(max(_call_gap(alert), timedelta(seconds=1)), timedelta(seconds=30))
        recipient.step, recipient.next_action_at = STEP_DONE, now + recheck
        return []
    recipient.step = STEP_DONE
    recipient.state = "exhausted"
    recipient.next_action_at = None
    if not queued and not _still_trying(session, recipient):
        audit.record(
            session, "relay", "alert.org_silent", target=f"alert {alert.id}",
            summary=f"organization {recipient.organization_id} has not answered after every "
            "contact",
            organization_id=recipient.organization_id,
        )  # fmt: skip
    return queued


def _call_under_way(calls: list[Delivery], now: datetime) -> bool:
    """A call was placed, has not ended, and is recent enough that its end may still come."""
    return any(
        call.state != PLANNED
        and call.state not in FINAL
        and (call.sent_at or call.due_at or now) > now - CALL_WAIT
        for call in calls
    )


def _still_trying(session: Session, recipient: Recipient) -> bool:
    """Another contact of the organization has a step to come (its turn, or a second call)."""
    others = select(Recipient.id).where(
        Recipient.alert_id == recipient.alert_id,
        Recipient.organization_id == recipient.organization_id,
        Recipient.id != recipient.id,
        (Recipient.state == "waiting") | Recipient.next_action_at.is_not(None),
    )
    return session.scalars(others.limit(1)).first() is not None


def queue_sends(session: Session, alert: Alert, deliveries: list[Delivery]) -> None:
    """Queue send batches for flushed deliveries (their ids known), coverage first."""
    _outbox_sends(session, alert, [(d.id, d.channel, d.position) for d in deliveries])


def _outbox_sends(session: Session, alert: Alert, items: list[tuple[int, str, int]]) -> None:
    """Queue send batches for (delivery id, channel, position) items, coverage first."""
    queue = outbox.queue_for(alert.status)
    by_channel: dict[str, list[int]] = defaultdict(list)
    for delivery_id, channel, _ in sorted(items, key=lambda item: item[2]):
        by_channel[channel].append(delivery_id)
    for channel, ids in by_channel.items():
        size = BATCH_SIZE[channel]
        for start in range(0, len(ids), size):
            outbox.add(
                session, "send_batch", channel=channel, ids=ids[start : start + size],
                queue=queue, alert_id=alert.id,
            )  # fmt: skip


def tick(session: Session, now: datetime | None = None, limit: int = 500) -> int:
    """Escalate every due recipient (up to `limit`); return how many moved."""
    now = now or datetime.now(UTC)
    due = _due(session, now, limit)
    queued: dict[int, list[Delivery]] = defaultdict(list)
    alerts: dict[int, Alert] = {}
    for recipient in due:
        alert = alerts.get(recipient.alert_id) or session.get(Alert, recipient.alert_id)
        assert alert is not None
        alerts[alert.id] = alert
        queued[alert.id].extend(step(session, alert, recipient, now))
    session.flush()
    for alert_id, deliveries in queued.items():
        if deliveries:
            queue_sends(session, alerts[alert_id], deliveries)
    return len(due)


def recover_stale_claims(session: Session, lease: timedelta, now: datetime | None = None) -> int:
    """Rows claimed by a worker that died mid-send go back to the queue (their task may be
    gone with the worker). Only requests in flight at the crash can be duplicated."""
    now = now or datetime.now(UTC)
    rows = session.execute(
        update(Delivery)
        .where(Delivery.state == SENDING, Delivery.claimed_at < now - lease)
        .values(state=QUEUED)
        .returning(Delivery.id, Delivery.alert_id, Delivery.channel, Delivery.position)
    ).all()
    by_alert: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
    for delivery_id, alert_id, channel, position in rows:
        by_alert[alert_id].append((delivery_id, channel, position))
    for alert_id, items in by_alert.items():
        alert = session.get(Alert, alert_id)
        assert alert is not None
        _outbox_sends(session, alert, items)
    if rows:
        log.warning("recovered %d stale claims", len(rows))
    return len(rows)
