"""Recording an organization's answers to its alert's questions, and reading the latest.

Whoever answers for an organization (a contact by link, SMS or keypad; an operator who heard it
by phone), every version is kept and the latest per question counts, so a base can revise its
number of people sheltering as they arrive. Answering acknowledges: a recipient who answered
has been reached and needs no further call. Nothing is stored unless every answer given is one
its question can take (AnswerError lists each problem)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay import audit
from relay.models import Alert, Answer, Organization, Recipient
from relay.questions.asked import questions_for
from relay.questions.catalog import AnswerError, Question
from relay.replies import acks

METHODS = ("link", "sms_reply", "voice_key", "manual")


@dataclass(frozen=True)
class Recorded:
    values: dict[str, int | str]  # what was stored, by question id
    acknowledged: bool  # this answer was the recipient's acknowledgement


def asked(session: Session, alert: Alert, recipient: Recipient) -> tuple[Question, ...]:
    """The questions this recipient's organization is asked, in order."""
    if not alert.questions:
        return ()
    org = session.get(Organization, recipient.organization_id)
    return questions_for(alert.questions, org.kind if org else "")


def record_answers(
    session: Session,
    alert: Alert,
    recipient: Recipient,
    values: Mapping[str, object],
    method: str,
    now: datetime,
    *,
    actor: str | None = None,
    inbound_id: int | None = None,
    channel: str | None = None,
) -> Recorded:
    """Check and store `values` (question id → answer as given); empty values are skipped.
    `channel`: the channel whose link was used (acknowledgements record what reached them)."""
    if method not in METHODS:
        raise ValueError(f"unknown answer method {method!r}")
    if alert.state == "cancelled":
        raise AnswerError("この連絡は取り消されました")
    questions = {q.id: q for q in asked(session, alert, recipient)}
    if not questions:
        raise AnswerError("この連絡には質問がありません")
    checked: dict[str, int | str] = {}
    problems: list[str] = []
    for question_id, given in values.items():
        question = questions.get(question_id)
        if question is None:
            problems.append(f"質問 {question_id[:40]!r} はこの団体に聞いていません")
            continue
        if given is None or (isinstance(given, str) and not given.strip()):
            continue
        try:
            checked[question_id] = question.check(given)
        except AnswerError as exc:
            problems.append(str(exc))
    if problems:
        raise AnswerError("; ".join(problems))
    if not checked:
        raise AnswerError("回答がありません")
    for question_id, value in checked.items():
        session.add(
            Answer(
                alert_id=alert.id,
                recipient_id=recipient.id,
                organization_id=recipient.organization_id,
                question_id=question_id,
                number=value if isinstance(value, int) else None,
                text=value if isinstance(value, str) else None,
                method=method,
                actor=actor,
                inbound_id=inbound_id,
                answered_at=now,
            )
        )
    result = acks.acknowledge(
        session, recipient, method, "ack", now, inbound_id=inbound_id, actor=actor, channel=channel
    )
    if method == "manual":
        audit.record(
            session,
            actor or "operator",
            "alert.answer",
            target=f"alert {alert.id}",
            summary=f"answers entered for organization {recipient.organization_id}",
            answers=dict(checked),
        )
    return Recorded(checked, result.recorded)


def latest_answers(session: Session, alert_id: int) -> dict[int, dict[str, Answer]]:
    """Organization id → question id → the answer that counts (the latest; every earlier
    version stays in the table)."""
    rows = session.scalars(
        select(Answer).where(Answer.alert_id == alert_id).order_by(Answer.answered_at, Answer.id)
    )
    latest: dict[int, dict[str, Answer]] = {}
    for answer in rows:
        latest.setdefault(answer.organization_id, {})[answer.question_id] = answer
    return latest


def operator_answers(
    session: Session,
    alert: Alert,
    org_code: str,
    values: Mapping[str, object],
    actor: str,
    now: datetime,
) -> Recorded:
    """An operator enters what an organization reported by phone: stored for its first
    recipient (the primary contact), acknowledged, audited. AnswerError if the organization is
    not among the alert's recipients or an answer does not fit."""
    recipient = session.scalars(
        select(Recipient)
        .join(Organization, Organization.id == Recipient.organization_id)
        .where(Recipient.alert_id == alert.id, Organization.code == org_code)
        .order_by(Recipient.position)
        .limit(1)
    ).first()
    if recipient is None:
        raise AnswerError(
            f"organization {org_code[:40]} is not among alert {alert.id}'s recipients"
        )
    return record_answers(session, alert, recipient, values, "manual", now, actor=actor)


def unreported(session: Session, alert: Alert) -> list[tuple[Organization, list[str]]]:
    """Organizations that acknowledged but have not answered every required question they are
    asked, with those questions' ids, by organization code: whom the reminders and the
    deadline summary name."""
    if not alert.questions:
        return []
    acknowledged = select(Recipient.organization_id).where(
        Recipient.alert_id == alert.id, Recipient.acknowledged_at.is_not(None)
    )
    latest = latest_answers(session, alert.id)
    found = []
    for org in session.scalars(
        select(Organization).where(Organization.id.in_(acknowledged)).order_by(Organization.code)
    ):
        given = latest.get(org.id, {})
        missing = [
            q.id
            for q in questions_for(alert.questions, org.kind)
            if q.required and q.id not in given
        ]
        if missing:
            found.append((org, missing))
    return found
