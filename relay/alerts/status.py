"""An alert's progress: per channel and overall, and who has not answered (SPEC 4.2)."""

from __future__ import annotations

import statistics
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relay.delivery.states import NOT_REACHED, PLANNED, SENT_STATES
from relay.models import Alert, Delivery, Organization, Recipient

CHANNELS = ("sms", "voice", "email")


def alert_status(session: Session, alert: Alert) -> dict[str, Any]:
    per_channel: dict[str, dict[str, int]] = {
        ch: {"planned": 0, "sent": 0, "delivered": 0, "reached": 0, "failed": 0, "pending": 0}
        for ch in CHANNELS
    }
    rows = session.execute(
        select(
            Delivery.channel,
            Delivery.state,
            func.count(),
            func.count(Delivery.sent_at),
            func.count(Delivery.delivered_at),
            func.count(Delivery.reached_at),
        )
        .where(Delivery.alert_id == alert.id)
        .group_by(Delivery.channel, Delivery.state)
    ).all()
    for channel, state, count, sent, delivered, reached in rows:
        counts = per_channel[channel]
        counts["planned"] += count
        counts["sent"] += sent  # the provider accepted it (a refusal is failed, not sent)
        if state in NOT_REACHED:
            counts["failed"] += count
        if state not in SENT_STATES and state not in (PLANNED, "cancelled"):
            counts["pending"] += count  # due, being sent, or outcome unknown
        counts["delivered"] += delivered
        counts["reached"] += reached
    recipients, acknowledged, reached = session.execute(
        select(
            func.count(), func.count(Recipient.acknowledged_at), func.count(Recipient.reached_at)
        ).where(Recipient.alert_id == alert.id)
    ).one()
    acked_orgs = select(Recipient.organization_id).where(
        Recipient.alert_id == alert.id, Recipient.acknowledged_at.is_not(None)
    )
    silent = session.scalars(
        select(Organization.code)
        .where(
            Organization.id.in_(
                select(Recipient.organization_id).where(Recipient.alert_id == alert.id)
            ),
            Organization.id.not_in(acked_orgs),
        )
        .order_by(Organization.code)
    ).all()
    overall = {k: sum(c[k] for c in per_channel.values()) for k in per_channel["sms"]}
    ack_times = sorted(
        (t - alert.sent_at).total_seconds()
        for t in session.scalars(
            select(Recipient.acknowledged_at).where(
                Recipient.alert_id == alert.id, Recipient.acknowledged_at.is_not(None)
            )
        )
        if t is not None
    )
    median_ack = statistics.median(ack_times) if ack_times else None
    return {
        "id": alert.id,
        "reference": alert.reference,
        "identifier": alert.identifier,
        "status": alert.status,
        "template": alert.template,
        "state": alert.state,
        "mode": alert.mode,
        "sent_at": alert.sent_at.isoformat(),
        "recipients": recipients,
        "reached": reached,
        "acknowledged": acknowledged,
        "median_time_to_ack_s": median_ack,
        "silent_orgs": list(silent),
        "overall": overall,
        **{ch: per_channel[ch] for ch in CHANNELS},
    }


def settled(session: Session, alert_id: int) -> bool:
    """Nothing of the alert is left to send and no escalation step waits (answered recipients
    have no next step)."""
    busy = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.alert_id == alert_id, Delivery.state.in_(("queued", "sending")))
    )
    waiting = session.scalar(
        select(func.count())
        .select_from(Recipient)
        .where(Recipient.alert_id == alert_id, Recipient.next_action_at.is_not(None))
    )
    return not busy and not waiting
