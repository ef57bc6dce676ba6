"""Audit trail: who did what, to what, when — written in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from relay.models import AuditEvent


def record(
    session: Session,
    actor: str,
    action: str,
    target: str = "",
    summary: str = "",
    **details: Any,
) -> AuditEvent:
    event = AuditEvent(actor=actor, action=action, target=target, summary=summary, details=details)
    session.add(event)
    return event
