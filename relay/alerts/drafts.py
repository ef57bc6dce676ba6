"""Prepared alerts (drafts): written by something that is not an operator — a JMA bulletin
that meets a `draft` rule (relay/jma/) — and issued by an operator with one confirmation, or
discarded. Issuing a draft is the ordinary issue path with the draft's fields; the draft
remembers the alert it became, and the audit says who confirmed it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay import audit
from relay.alerts.issuing import IssueError, IssueRequest, issue_alert
from relay.config import Settings
from relay.directory.audience import AudienceError, parse_audience
from relay.models import Alert, AlertDraft

OPEN = "open"


class DraftError(ValueError):
    """The draft cannot be issued or discarded as asked; nothing was written."""


@dataclass(frozen=True)
class DraftFields:
    """What an alert needs, minus the operator's confirmation."""

    template: str
    audience: str
    variables: dict[str, str] = field(default_factory=dict)
    channels: Sequence[str] = ("sms", "voice", "email")
    mode: str = "cascade"
    status: str = "Actual"
    questions: Sequence[str] = ()
    ack_within: timedelta = timedelta(minutes=15)

    def request(self, actor: str) -> IssueRequest:
        try:
            audience = parse_audience(self.audience)
        except AudienceError as exc:
            raise DraftError(f"audience: {exc}") from None
        return IssueRequest(
            template=self.template,
            audience=audience,
            variables=dict(self.variables),
            channels=tuple(self.channels),
            mode=self.mode,
            ack_within=self.ack_within,
            status=self.status,
            issued_by=actor,
            questions=tuple(self.questions),
        )


def create_draft(
    session: Session,
    fields: DraftFields,
    *,
    rule: str,
    summary: str,
    bulletin_id: int | None = None,
) -> AlertDraft:
    draft = AlertDraft(
        template=fields.template,
        variables=dict(fields.variables),
        audience=fields.audience,
        channels=list(fields.channels),
        mode=fields.mode,
        status=fields.status,
        questions=list(fields.questions),
        ack_within_s=int(fields.ack_within.total_seconds()),
        rule=rule,
        summary=summary,
        bulletin_id=bulletin_id,
    )
    session.add(draft)
    session.flush()
    audit.record(
        session,
        "relay",
        "draft.create",
        target=f"draft {draft.id}",
        summary=f"{fields.status} {fields.template} to {fields.audience} ({rule})",
        bulletin_id=bulletin_id,
    )
    return draft


def fields_of(draft: AlertDraft) -> DraftFields:
    return DraftFields(
        template=draft.template,
        audience=draft.audience,
        variables={str(k): str(v) for k, v in draft.variables.items()},
        channels=tuple(draft.channels),
        mode=draft.mode,
        status=draft.status,
        questions=tuple(draft.questions),
        ack_within=timedelta(seconds=draft.ack_within_s),
    )


def open_drafts(session: Session) -> list[AlertDraft]:
    return list(
        session.scalars(
            select(AlertDraft).where(AlertDraft.state == OPEN).order_by(AlertDraft.id.desc())
        )
    )


def _open_draft(session: Session, draft_id: int) -> AlertDraft:
    # Locked: two operators confirming the same draft at once issue it once.
    draft = session.scalar(select(AlertDraft).where(AlertDraft.id == draft_id).with_for_update())
    if draft is None:
        raise DraftError(f"no draft {draft_id}")
    if draft.state != OPEN:
        done = f" as alert {draft.alert_id}" if draft.alert_id else ""
        raise DraftError(f"draft {draft_id} is already {draft.state}{done}")
    return draft


def issue_draft(session: Session, settings: Settings, draft_id: int, actor: str) -> Alert:
    """Issue the draft as it stands. The caller commits, then publishes the outbox."""
    draft = _open_draft(session, draft_id)
    try:
        alert = issue_alert(session, settings, fields_of(draft).request(actor))
    except IssueError as exc:
        raise DraftError(str(exc)) from None
    draft.state = "issued"
    draft.alert_id = alert.id
    draft.decided_by = actor
    draft.decided_at = datetime.now(UTC)
    audit.record(
        session,
        actor,
        "draft.issue",
        target=f"draft {draft.id}",
        summary=f"issued as alert {alert.id} ({alert.reference})",
        alert_id=alert.id,
        bulletin_id=draft.bulletin_id,
    )
    return alert


def discard_draft(session: Session, draft_id: int, actor: str) -> AlertDraft:
    draft = _open_draft(session, draft_id)
    draft.state = "discarded"
    draft.decided_by = actor
    draft.decided_at = datetime.now(UTC)
    audit.record(session, actor, "draft.discard", target=f"draft {draft.id}", summary=draft.rule)
    return draft


def withdraw_draft(session: Session, draft: AlertDraft, reason: str) -> None:
    """The relay takes back a draft nobody confirmed (its bulletin was cancelled, or an
    automatic alert for the same event went out)."""
    draft.state = "withdrawn"
    draft.decided_by = "relay"
    draft.decided_at = datetime.now(UTC)
    audit.record(session, "relay", "draft.withdraw", target=f"draft {draft.id}", summary=reason)


def revise_draft(
    session: Session, draft: AlertDraft, variables: dict[str, str], summary: str
) -> None:
    """A later, stronger bulletin of the same event rewrites an open draft in place."""
    draft.variables = dict(variables)
    draft.summary = summary
    audit.record(session, "relay", "draft.revise", target=f"draft {draft.id}", summary=summary)
