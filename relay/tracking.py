"""Delivery tracking: provider events move deliveries forward only, and mark recipients
reached or not reached (SPEC 4.2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from channels.base import Outcome
from relay.delivery_states import (
    ANSWERED,
    COMPLETED,
    DELIVERED,
    NOT_REACHED,
    advance,
    state_for,
)
from relay.models import Delivery, DeliveryEvent, Recipient


@dataclass(frozen=True)
class ProviderEvent:
    """A status report from a provider, already translated to our vocabulary at the edge."""

    kind: str  # "sms_status", "call_status", ...
    provider_id: str | None
    delivery_hint: int | None  # the delivery id we put in the callback URL, if any
    status: str  # the provider's own word, kept for the record
    outcome: Outcome | None  # None: an event that does not change the state (e.g. ringing)
    error_code: str | None
    payload: dict[str, Any]


def find_delivery(session: Session, event: ProviderEvent) -> Delivery | None:
    if event.delivery_hint is not None:
        delivery = session.get(Delivery, event.delivery_hint, with_for_update=True)
        # The hint is only trusted when it agrees with the provider's id (or none is known).
        if delivery is not None and (
            delivery.provider_id is None or event.provider_id in (None, delivery.provider_id)
        ):
            return delivery
    if event.provider_id:
        return session.scalars(
            select(Delivery).where(Delivery.provider_id == event.provider_id).with_for_update()
        ).first()
    return None


def apply_event(session: Session, event: ProviderEvent, now: datetime) -> Delivery | None:
    """Store the event as received; move its delivery forward if it says something new.
    Unknown deliveries are kept (delivery_id NULL) and reported by returning None."""
    delivery = find_delivery(session, event)
    session.add(
        DeliveryEvent(
            delivery_id=delivery.id if delivery else None,
            provider_id=event.provider_id,
            kind=event.kind,
            status=event.status,
            payload=event.payload,
            received_at=now,
        )
    )
    if delivery is None or event.outcome is None:
        return delivery
    if delivery.provider_id is None and event.provider_id:
        delivery.provider_id = event.provider_id  # reconciles an ambiguous send
    if delivery.sent_at is None and event.provider_id:
        delivery.sent_at = now  # the provider has it, whatever our send call saw
    new = advance(delivery.state, state_for(event.outcome))
    if new is None:
        return delivery
    delivery.state = new
    if new == DELIVERED:
        delivery.delivered_at = now
    if new in (ANSWERED, COMPLETED) and delivery.reached_at is None:
        delivery.reached_at = now
        mark_reached(session, delivery.recipient_id, now)
    if new in NOT_REACHED:
        delivery.error_code = event.error_code or delivery.error_code
        delivery.finished_at = now
        mark_not_reached(session, [delivery.recipient_id], now)
    elif new in (DELIVERED, COMPLETED):
        delivery.finished_at = now
    return delivery


def mark_reached(
    session: Session, recipient_id: int, now: datetime, channel: str | None = None
) -> None:
    """The person was reached (answered, replied, opened the link); by `channel` if known."""
    session.execute(
        update(Recipient)
        .where(Recipient.id == recipient_id, Recipient.reached_at.is_(None))
        .values(reached_at=now)
        .execution_options(synchronize_session=False)
    )
    if channel is not None:
        session.execute(
            update(Delivery)
            .where(
                Delivery.recipient_id == recipient_id,
                Delivery.channel == channel,
                Delivery.reached_at.is_(None),
                Delivery.provider_id.is_not(None),
            )
            .values(reached_at=now)
            .execution_options(synchronize_session=False)
        )


def mark_not_reached(session: Session, recipient_ids: Sequence[int], now: datetime) -> None:
    """A not-reached outcome brings the recipient's next step forward to now (SPEC 4.2);
    the escalation tick takes it from there."""
    session.execute(
        update(Recipient)
        .where(
            Recipient.id.in_(recipient_ids),
            Recipient.acknowledged_at.is_(None),
            Recipient.next_action_at.is_not(None),
            Recipient.next_action_at > now,
        )
        .values(next_action_at=now)
    )
