"""Acknowledgements: recorded once per recipient; they stop that organization's pending steps.

An organization is acknowledged when any of its contacts answers: its alternates' planned
steps and the answering contact's own pending sends are cancelled at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from relay.delivery.states import CANCELLED, PLANNED, QUEUED
from relay.delivery.tracking import mark_reached
from relay.models import Acknowledgement, Alert, Delivery, Recipient

# voice_speech: a spoken answer in the call (はい, 了解), understood as an SMS reply would be.
METHODS = ("sms_reply", "voice_key", "voice_speech", "link", "manual")
_METHOD_CHANNEL = {"sms_reply": "sms", "voice_key": "voice", "voice_speech": "voice"}


@dataclass(frozen=True)
class AckResult:
    recipient_id: int
    alert_id: int
    recorded: bool  # False: this recipient had already acknowledged; nothing changed
    answer_code: str


def acknowledge(
    session: Session,
    recipient: Recipient,
    method: str,
    answer_code: str,
    now: datetime,
    *,
    text: str | None = None,
    inbound_id: int | None = None,
    actor: str | None = None,
    channel: str | None = None,
) -> AckResult:
    if method not in METHODS:
        raise ValueError(f"unknown acknowledgement method {method!r}")
    if recipient.acknowledged_at is not None:
        return AckResult(recipient.id, recipient.alert_id, False, recipient.ack_answer or "")
    session.add(
        Acknowledgement(
            recipient_id=recipient.id,
            method=method,
            channel=channel or _METHOD_CHANNEL.get(method),
            answer_code=answer_code,
            text=text,
            inbound_id=inbound_id,
            actor=actor,
            received_at=now,
        )
    )
    recipient.acknowledged_at = now
    recipient.ack_method = method
    recipient.ack_answer = answer_code
    recipient.state = "acknowledged"
    recipient.next_action_at = None
    mark_reached(session, recipient.id, now, channel or _METHOD_CHANNEL.get(method))
    _stop_pending(session, recipient)
    return AckResult(recipient.id, recipient.alert_id, True, answer_code)


def _stop_pending(session: Session, recipient: Recipient) -> None:
    org_recipients = select(Recipient.id).where(
        Recipient.alert_id == recipient.alert_id,
        Recipient.organization_id == recipient.organization_id,
    )
    alert_mode = session.scalar(select(Alert.mode).where(Alert.id == recipient.alert_id))
    # In blast mode everyone was asked at once; only cascade holds alternates back.
    targets = (
        org_recipients
        if alert_mode == "cascade"
        else select(Recipient.id).where(Recipient.id == recipient.id)
    )
    session.execute(
        update(Delivery)
        .where(Delivery.recipient_id.in_(targets), Delivery.state.in_((PLANNED, QUEUED)))
        .values(state=CANCELLED)
        .execution_options(synchronize_session=False)
    )
    if alert_mode == "cascade":
        session.execute(
            update(Recipient)
            .where(Recipient.id.in_(org_recipients), Recipient.acknowledged_at.is_(None))
            .values(next_action_at=None, state="covered")
            .execution_options(synchronize_session=False)
        )
