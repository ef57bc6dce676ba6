"""At an alert's deadline the ward's duty staff get the organizations still silent (SPEC 4.1).

This is also how blast mode chases silence: everyone was asked at once, so at the deadline the
people left to act are the staff, who phone the silent organizations and record what they learn
(`relay alert ack`). The summary is an alert of its own (template `staff-summary`) to the
ward office's contacts by SMS and email, through the normal pipeline.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay import audit
from relay.alerts.issuing import IssueError, IssueRequest, issue_alert
from relay.config import Settings
from relay.directory.audience import Audience, AudienceError
from relay.models import Alert, Organization, Recipient
from relay.replies.answers import unreported

SUMMARY_TEMPLATE = "staff-summary"


def _silent_org_names(session: Session, alert: Alert) -> list[str]:
    acknowledged = select(Recipient.organization_id).where(
        Recipient.alert_id == alert.id, Recipient.acknowledged_at.is_not(None)
    )
    return list(
        session.scalars(
            select(Organization.name)
            .where(
                Organization.id.in_(
                    select(Recipient.organization_id).where(Recipient.alert_id == alert.id)
                ),
                Organization.id.not_in(acknowledged),
            )
            .order_by(Organization.code)
        )
    )


def summarize_due(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """Send (once) the silent-organization summary of every alert whose deadline has passed."""
    now = now or datetime.now(UTC)
    due = session.scalars(
        select(Alert).where(
            Alert.ack_deadline <= now,
            Alert.state.in_(("dispatching", "active", "closed")),
            Alert.msg_type != "Cancel",
            Alert.template != SUMMARY_TEMPLATE,
        )
    ).all()
    done = 0
    for alert in due:
        if "summary" in alert.escalation:
            continue
        silent = _silent_org_names(session, alert)
        # Acknowledged, but the required questions unanswered (issue 16): named too.
        behind = [org.name for org, _ in unreported(session, alert)]
        summary_id: int | None = None
        if silent or behind:
            request = IssueRequest(
                template=SUMMARY_TEMPLATE,
                audience=Audience(kinds=("ward_office",)),
                variables={
                    "about": alert.reference,
                    "silent_count": str(len(silent)),
                    "silent_orgs": "、".join(name[:40] for name in silent[:10]),
                    **(
                        {
                            "unreported_count": str(len(behind)),
                            "unreported_orgs": "、".join(name[:40] for name in behind[:10]),
                        }
                        if behind
                        else {}
                    ),
                },
                channels=("sms", "email"),
                mode="blast",
                status=alert.status,
                issued_by="relay",
            )
            try:
                with session.begin_nested():
                    summary_id = issue_alert(session, settings, request, now).id
            except (IssueError, AudienceError) as exc:  # e.g. no ward office in the directory
                audit.record(
                    session,
                    "relay",
                    "alert.deadline_summary_failed",
                    target=f"alert {alert.id}",
                    summary=str(exc),
                )
        alert.escalation = {**alert.escalation, "summary": summary_id}
        audit.record(
            session,
            "relay",
            "alert.deadline_summary",
            target=f"alert {alert.id}",
            summary=f"{len(silent)} organization(s) silent at the deadline",
            summary_alert=summary_id,
            silent=silent[:50],
            unreported=behind[:50],
        )
        done += 1
    return done
