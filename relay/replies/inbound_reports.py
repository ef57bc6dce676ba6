"""Inbound reports for operators (SPEC 4.5): free text from known contacts, and messages from
unknown numbers, tied to the alert and organization; an operator marks them handled."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay import audit
from relay.models import Alert, Contact, InboundMessage, Organization

REPORT_KINDS = ("report", "unknown_sender")


def list_reports(
    session: Session, which: Literal["open", "handled", "all"], limit: int = 200
) -> list[dict[str, Any]]:
    """Newest first."""
    stmt = (
        select(InboundMessage, Organization.code, Organization.name, Contact.name, Alert)
        .outerjoin(Contact, Contact.id == InboundMessage.contact_id)
        .outerjoin(Organization, Organization.id == Contact.organization_id)
        .outerjoin(Alert, Alert.id == InboundMessage.alert_id)
        .where(InboundMessage.interpretation.in_(REPORT_KINDS))
    )
    if which == "open":
        stmt = stmt.where(InboundMessage.handled_at.is_(None))
    elif which == "handled":
        stmt = stmt.where(InboundMessage.handled_at.is_not(None))
    rows = session.execute(stmt.order_by(InboundMessage.received_at.desc()).limit(limit)).all()
    return [
        {
            "id": m.id,
            "org_code": code,
            "org_name": org_name,
            "contact": contact,
            "alert_id": alert.id if alert else None,
            "alert_reference": alert.reference if alert else None,
            "body": m.body,
            "kind": m.interpretation,
            "received_at": m.received_at,
            "handled_at": m.handled_at,
            "handled_by": m.handled_by,
        }
        for m, code, org_name, contact, alert in rows
    ]


def mark_handled(session: Session, report_id: int, actor: str) -> InboundMessage:
    """Mark a report handled (once; marking it again changes nothing). Same audit event as the
    API's POST /api/v1/reports/{id}/handled."""
    message = session.get(InboundMessage, report_id)
    if message is None or message.interpretation not in REPORT_KINDS:
        raise LookupError(f"no report {report_id}")
    if message.handled_at is None:
        message.handled_at, message.handled_by = datetime.now(UTC), actor
        audit.record(session, actor, "report.handled", target=f"inbound {report_id}")
    return message
