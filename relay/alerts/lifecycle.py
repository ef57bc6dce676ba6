"""An alert after it is issued: update, cancel, close, manual acknowledgement (SPEC 4.1, 4.3).

Update and Cancel are new CAP messages that reference the earlier one. An update goes to the
recipients who already got the earlier alert; a cancel stops every pending send and
escalation of the earlier alert at once, then tells those who were reached.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from relay import audit
from relay.alerts.issuing import IssueError, IssueRequest, issue_alert
from relay.config import Settings
from relay.delivery.states import CANCELLED, PLANNED, QUEUED
from relay.directory.audience import Audience
from relay.messages import answer_options
from relay.models import Alert, Contact, Delivery, Organization, Recipient
from relay.replies import acks


class LifecycleError(ValueError):
    """The alert cannot be changed that way; the message says why."""


def _open_alert(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id, with_for_update=True)
    if alert is None:
        raise LifecycleError(f"no alert {alert_id}")
    if alert.state in ("cancelled", "closed"):
        raise LifecycleError(f"alert {alert_id} is {alert.state}")
    return alert


def _reached_contacts(session: Session, alert: Alert) -> tuple[int, ...]:
    """Contacts the provider accepted something for: who a follow-up must reach."""
    sent = select(Delivery.recipient_id).where(
        Delivery.alert_id == alert.id, Delivery.sent_at.is_not(None)
    )
    return tuple(
        session.scalars(
            select(Recipient.contact_id).where(Recipient.id.in_(sent)).order_by(Recipient.position)
        )
    )


def stop_pending(session: Session, alert: Alert) -> int:
    """Pending sends and escalations of the alert stop now; returns the sends cancelled."""
    cancelled = session.execute(
        update(Delivery)
        .where(Delivery.alert_id == alert.id, Delivery.state.in_((PLANNED, QUEUED)))
        .values(state=CANCELLED)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Recipient)
        .where(Recipient.alert_id == alert.id)
        .values(next_action_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(cancelled, "rowcount", 0))


def update_alert(
    session: Session,
    settings: Settings,
    alert_id: int,
    template: str,
    variables: dict[str, str],
    actor: str,
    channels: tuple[str, ...] | None = None,
) -> Alert:
    """A follow-up (CAP msgType Update) to everyone the earlier alert reached."""
    earlier = _open_alert(session, alert_id)
    contacts = _reached_contacts(session, earlier)
    if not contacts:
        raise LifecycleError(f"alert {alert_id} has reached no one yet; cancel and reissue instead")
    stop_pending(session, earlier)
    earlier.state = "closed"
    earlier.closed_at = datetime.now(UTC)
    request = IssueRequest(
        template=template,
        audience=Audience(contact_ids=contacts),
        variables=variables,
        channels=channels or tuple(earlier.channels),
        mode=earlier.mode,
        status=earlier.status,
        issued_by=actor,
        msg_type="Update",
        references=[earlier.identifier],
        supersedes_id=earlier.id,
    )
    try:
        alert = issue_alert(session, settings, request)
    except IssueError as exc:
        raise LifecycleError(str(exc)) from None
    audit.record(
        session,
        actor,
        "alert.update",
        target=f"alert {earlier.id}",
        summary=f"updated by alert {alert.id} ({alert.reference})",
    )
    return alert


def cancel_alert(session: Session, settings: Settings, alert_id: int, actor: str) -> Alert | None:
    """Stop everything pending at once; tell those already reached with an all-clear-style
    Cancel message. Returns the Cancel alert, or None when nobody had been sent anything."""
    earlier = _open_alert(session, alert_id)
    stopped = stop_pending(session, earlier)
    contacts = _reached_contacts(session, earlier)
    earlier.state = "cancelled"
    earlier.closed_at = datetime.now(UTC)
    audit.record(
        session,
        actor,
        "alert.cancel",
        target=f"alert {earlier.id}",
        summary=f"{stopped} pending send(s) stopped",
    )
    if not contacts:
        return None
    # The notice goes by SMS and email: a phone call to say "never mind" is an intrusion.
    channels = tuple(c for c in earlier.channels if c != "voice") or tuple(earlier.channels)
    request = IssueRequest(
        template="all-clear",
        audience=Audience(contact_ids=contacts),
        variables={"area": earlier.area_desc or "金沢区"},
        channels=channels,
        mode="blast",
        status=earlier.status,
        issued_by=actor,
        msg_type="Cancel",
        references=[earlier.identifier],
        supersedes_id=earlier.id,
    )
    try:
        return issue_alert(session, settings, request)
    except IssueError as exc:
        raise LifecycleError(str(exc)) from None


def manual_ack(
    session: Session,
    alert_id: int,
    org_code: str,
    actor: str,
    note: str,
    contact_name: str | None = None,
    answer_code: str = "ack",
) -> list[dict[str, Any]]:
    """An operator marks an organization's recipient acknowledged (e.g. after phoning them)."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise LifecycleError(f"no alert {alert_id}")
    if not note.strip():
        raise LifecycleError("a note is required (who confirmed, how)")
    # The answers a recipient of this alert can give, and no other: a typed "dmage" must not
    # become an answer nobody can count.
    codes = [o.code for o in answer_options(alert.template, alert.language)]
    if answer_code not in codes:
        raise LifecycleError(
            f"answer {answer_code[:32]!r} is not one of this alert's answers: {', '.join(codes)}"
        )
    stmt = (
        select(Recipient, Contact)
        .join(Contact, Contact.id == Recipient.contact_id)
        .join(Organization, Organization.id == Recipient.organization_id)
        .where(Recipient.alert_id == alert_id, Organization.code == org_code)
        .order_by(Recipient.position)
    )
    rows = [
        (r, c)
        for r, c in session.execute(stmt).all()
        if contact_name is None or c.name == contact_name
    ]
    if not rows:
        raise LifecycleError(
            f"organization {org_code} is not among alert {alert_id}'s recipients"
            + (f" (contact {contact_name!r})" if contact_name else "")
        )
    recipient, contact = rows[0]
    result = acks.acknowledge(
        session, recipient, "manual", answer_code, datetime.now(UTC), text=note, actor=actor
    )
    audit.record(
        session,
        actor,
        "alert.manual_ack",
        target=f"alert {alert_id}",
        summary=f"{org_code} / {contact.name}: {note}",
    )
    return [
        {"recipient_id": result.recipient_id, "contact": contact.name, "recorded": result.recorded}
    ]
