"""Cascade escalation (SPEC 4.1): SMS and email first; a call if there is no acknowledgement
within the first delay; then the organization's next contact; then the ward staff are told the
organization is still silent.

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

from relay import audit, outbox
from relay.delivery_states import PLANNED, QUEUED, SENDING
from relay.dispatch import BATCH_SIZE
from relay.models import Alert, Delivery, Recipient

log = logging.getLogger(__name__)

# Steps of one contact: 0 = SMS/email sent, 1 = call placed, 2 = done (next contact's turn).
STEP_FIRST, STEP_CALL, STEP_DONE = 0, 1, 2


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


def step(session: Session, alert: Alert, recipient: Recipient, now: datetime) -> list[Delivery]:
    """Move one due recipient one step; return the deliveries it queued."""
    if recipient.step == STEP_FIRST:
        calls = _queue(session, recipient, {"voice"}, now)
        if calls:
            recipient.step = STEP_CALL
            _, _, gap = first_step({"voice"}, alert.escalation)
            recipient.next_action_at = now + timedelta(seconds=gap)
            return calls
    recipient.step = STEP_DONE
    recipient.state = "exhausted"
    recipient.next_action_at = None
    following = _next_contact(session, recipient)
    if following is not None:
        return start_contact(session, alert, following, now)
    audit.record(
        session, "relay", "alert.org_silent", target=f"alert {alert.id}",
        summary=f"organization {recipient.organization_id} has not answered after every contact",
        organization_id=recipient.organization_id,
    )  # fmt: skip
    return []


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
            items = [(d.id, d.channel, d.position) for d in deliveries]
            _outbox_sends(session, alerts[alert_id], items)
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
