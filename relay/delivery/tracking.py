"""Delivery tracking: provider events move deliveries forward only, and mark recipients
reached or not reached (SPEC 4.2)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from channels.base import Outcome
from relay.delivery.states import (
    ANSWERED,
    COMPLETED,
    DELIVERED,
    NOT_REACHED,
    advance,
    state_for,
)
from relay.models import Delivery, DeliveryEvent, Recipient

STATUS_LENGTH = 32  # delivery_events.status (relay/models.py)


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


def find_delivery(
    session: Session, event: ProviderEvent, locked: Mapping[int, Delivery] | None = None
) -> Delivery | None:
    """The event's delivery, locked. `locked`: deliveries a batch already locked, by id
    (Session.get with FOR UPDATE skips the identity map and would query each one again)."""
    if event.delivery_hint is not None:
        if locked is None:
            delivery = session.get(Delivery, event.delivery_hint, with_for_update=True)
        else:
            delivery = locked.get(event.delivery_hint)
        # The hint is only trusted when it agrees with the provider's id (or none is known).
        if delivery is not None and (
            delivery.provider_id is None or event.provider_id in (None, delivery.provider_id)
        ):
            return delivery
    if event.provider_id:
        # An earlier event of the same batch may have just reconciled this provider id.
        session.flush()
        return session.scalars(
            select(Delivery).where(Delivery.provider_id == event.provider_id).with_for_update()
        ).first()
    return None


def lock_deliveries(session: Session, ids: Iterable[int]) -> dict[int, Delivery]:
    """Lock the deliveries with these ids in one query. In id order, so that two batches
    touching the same deliveries queue behind each other instead of deadlocking."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.scalars(
        select(Delivery).where(Delivery.id.in_(wanted)).order_by(Delivery.id).with_for_update()
    )
    return {delivery.id: delivery for delivery in rows}


def apply_events(
    session: Session, events: Sequence[ProviderEvent], now: datetime
) -> list[Delivery | None]:
    """`apply_event` for a batch in one transaction, one result per event, in order. One
    query locks the hinted deliveries; events without a usable hint are looked up by
    provider id as `apply_event` does."""
    hints = (e.delivery_hint for e in events if e.delivery_hint is not None)
    locked = lock_deliveries(session, hints)
    # The recipient updates in between read nothing this batch changed: the deliveries' own
    # updates can wait and go together at the end.
    with session.no_autoflush:
        found = [_advance_delivery(session, event, now, locked) for event in events]
    # One INSERT for all the rows (an executemany: psycopg sends it in one round trip),
    # without the per-object ORM bookkeeping nobody reads here.
    session.execute(
        insert(DeliveryEvent),
        [_event_row(event, delivery, now) for event, delivery in zip(events, found, strict=True)],
    )
    return found


def apply_event(session: Session, event: ProviderEvent, now: datetime) -> Delivery | None:
    """Store the event as received; move its delivery forward if it says something new.
    Unknown deliveries are kept (delivery_id NULL) and reported by returning None."""
    delivery = _advance_delivery(session, event, now, None)
    session.add(DeliveryEvent(**_event_row(event, delivery, now)))
    return delivery


def _event_row(event: ProviderEvent, delivery: Delivery | None, now: datetime) -> dict[str, Any]:
    return {
        "delivery_id": delivery.id if delivery else None,
        "provider_id": event.provider_id,
        "kind": event.kind,
        # Cut to its column: a word longer than any Twilio sends must not make a signed
        # callback fail for ever (each failure is a 500, and Twilio retries it).
        "status": event.status[:STATUS_LENGTH],
        "payload": event.payload,
        "received_at": now,
    }


def _advance_delivery(
    session: Session, event: ProviderEvent, now: datetime, locked: Mapping[int, Delivery] | None
) -> Delivery | None:
    """Find the event's delivery and move it forward; storing the event is the caller's."""
    delivery = find_delivery(session, event, locked)
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
