"""The ward's picture of an alert's answers (issue 16): per question the counts, sums and
free-text needs, per district and per kind of organization; the organizations with a critical
answer first; and who acknowledged but has not answered the required questions yet."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from relay.models import Alert, Answer, Organization, Recipient
from relay.questions.asked import all_questions, questions_for
from relay.questions.catalog import Question
from relay.replies.answers import latest_answers, unreported
from relay.spreadsheet import safe_cell


def _organizations_of(alert: Alert) -> Select[Organization]:
    """The alert's organizations, once each (not DISTINCT: PostgreSQL cannot compare json)."""
    ids = select(Recipient.organization_id).where(Recipient.alert_id == alert.id)
    return select(Organization).where(Organization.id.in_(ids))


def _empty(question: Question) -> dict[str, Any]:
    entry: dict[str, Any] = {"answered": 0}
    if question.kind in ("choice", "yes_no"):
        entry["options"] = {str(o.number): 0 for o in question.choices()}
    elif question.kind == "number":
        entry["sum"] = 0
    return entry


def _add(entry: dict[str, Any], question: Question, value: int | str) -> None:
    entry["answered"] += 1
    if question.kind in ("choice", "yes_no"):
        entry["options"][str(value)] = entry["options"].get(str(value), 0) + 1
    elif question.kind == "number" and isinstance(value, int):
        entry["sum"] += value


def answer_tally(session: Session, alert: Alert) -> dict[str, Any]:
    """JSON-ready: what `GET /api/v1/alerts/{id}/answers` and `relay alert answers` show."""
    questions = all_questions(alert.questions)
    orgs = {org.id: org for org in session.scalars(_organizations_of(alert))}
    latest = latest_answers(session, alert.id)
    per_question: dict[str, dict[str, Any]] = {}
    for q in questions:
        per_question[q.id] = {
            "id": q.id,
            "label": q.label("ja"),
            "kind": q.kind,
            "required": q.required,
            "asked": 0,
            **_empty(q),
            "by_district": {},
            "by_kind": {},
        }
        if q.kind in ("choice", "yes_no"):
            per_question[q.id]["option_labels"] = {
                str(o.number): o.label("ja") for o in q.choices()
            }
        if q.kind == "text":
            per_question[q.id]["texts"] = []
    critical: list[dict[str, Any]] = []  # ordered by organization code
    for org_id, org in sorted(orgs.items(), key=lambda item: item[1].code):
        asked = questions_for(alert.questions, org.kind)
        given = latest.get(org_id, {})
        for q in asked:
            entry = per_question[q.id]
            entry["asked"] += 1
            answer = given.get(q.id)
            if answer is None:
                continue
            value: int | str = answer.number if answer.number is not None else answer.text or ""
            _add(entry, q, value)
            for key, group in (("by_district", org.district or "—"), ("by_kind", org.kind)):
                _add(entry[key].setdefault(group, _empty(q)), q, value)
            if q.kind == "text":
                entry["texts"].append({"org": org.code, "name": org.name, "text": value})
            if q.is_critical(value):
                critical.append(
                    {
                        "org": org.code,
                        "name": org.name,
                        "district": org.district,
                        "kind": org.kind,
                        "question": q.id,
                        "answer": f"{q.label('ja')}: {q.shown(value)}",  # 火災: はい
                    }
                )
    asked_orgs = [o for o in orgs.values() if questions_for(alert.questions, o.kind)]
    complete = [
        o
        for o in asked_orgs
        if all(
            q.id in latest.get(o.id, {})
            for q in questions_for(alert.questions, o.kind)
            if q.required
        )
    ]
    return {
        "alert_id": alert.id,
        "questionnaires": list(alert.questions),
        "organizations_asked": len(asked_orgs),
        "organizations_answered_required": len(complete),
        "questions": list(per_question.values()),
        "critical": critical,
        "acknowledged_without_required_answers": [
            {"org": org.code, "name": org.name, "questions": missing}
            for org, missing in unreported(session, alert)
        ],
    }


def answers_csv(session: Session, alert: Alert) -> str:
    """One row per organization asked: its district and kind, then the latest answer to each
    question (labels as shown, e.g. 負傷者あり, 45人), for the HQ's spreadsheet. Cells pass
    through safe_cell: an answer typed as `=HYPERLINK(…)` stays text."""
    questions = all_questions(alert.questions)
    latest = latest_answers(session, alert.id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["org", "name", "district", "kind", *(q.label("ja") for q in questions)])
    orgs = session.scalars(_organizations_of(alert).order_by(Organization.code))
    for org in orgs:
        asked = {q.id for q in questions_for(alert.questions, org.kind)}
        if not asked:
            continue
        given = latest.get(org.id, {})
        cells: list[object] = [org.code, org.name, org.district, org.kind]
        for q in questions:
            answer = given.get(q.id)
            if q.id not in asked or answer is None:
                cells.append("")
            else:
                value = answer.number if answer.number is not None else answer.text or ""
                cells.append(q.shown(value))
        writer.writerow([safe_cell(cell) for cell in cells])
    return out.getvalue()


def required_answer_seconds(session: Session, alert: Alert) -> list[float]:
    """For each organization that has answered every required question it is asked: seconds
    from the alert's issue until the last of them was first answered (in simulated time for a
    simulated run, like the acknowledgement times)."""
    scale = float(alert.escalation.get("time_scale", 1.0))
    first: dict[tuple[int, str], datetime] = {}
    for answer in session.scalars(select(Answer).where(Answer.alert_id == alert.id)):
        key = (answer.organization_id, answer.question_id)
        if key not in first or answer.answered_at < first[key]:
            first[key] = answer.answered_at
    seconds = []
    for org in session.scalars(_organizations_of(alert)):
        required = [q.id for q in questions_for(alert.questions, org.kind) if q.required]
        times = [first.get((org.id, q)) for q in required]
        if required and all(t is not None for t in times):
            done = max(t for t in times if t is not None)
            seconds.append((done - alert.sent_at).total_seconds() * scale)
    return sorted(seconds)
