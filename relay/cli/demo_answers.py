"""The demo's situation report (issue 16): the questions as the simulated people see them, the
tallies printed after the drill report, and the check of those tallies against the
simulator's own record of what its people answered and which reminders they got."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.cli.common import console
from relay.models import Delivery, Organization, Recipient
from relay.questions.asked import all_questions, questions_for
from relay.questions.catalog import AnswerError, Question
from simulator import CarrierSimulator
from simulator.realistic import Question as SimQuestion

# Asked with the demo's exercise: every organization's damage report, and the disaster
# prevention bases' status (base-status asks only them).
QUESTIONNAIRES = ("damage-report", "base-status")


def sim_questions(names: Sequence[str], org_kind: str) -> tuple[SimQuestion, ...]:
    """The questions an organization of `org_kind` is asked, as its people see them."""
    return tuple(
        SimQuestion(
            id=q.id,
            kind=q.kind,
            label=q.label("ja"),
            required=q.required,
            options=len(q.choices()),
            minimum=q.minimum,
            maximum=q.maximum,
            critical=tuple(o.number for o in q.choices() if o.critical),
        )
        for q in questions_for(names, org_kind)
    )


@dataclass
class AnswerRecord:
    """What the simulator's people answered for the alert, organization by organization."""

    latest: dict[str, dict[str, str]] = field(default_factory=dict)  # org -> question -> value
    reminded: set[str] = field(default_factory=set)  # organizations whose people got one
    after_reminder: set[str] = field(default_factory=set)  # ... and answered it


def simulator_answers(
    sim: CarrierSimulator, owner: dict[str, str], reference: str, other_ids: set[str]
) -> AnswerRecord:
    """From the simulator's log: every request a person made with answers that the relay
    took (an SMS the relay answered naming the alert, a form or a key it answered 200), the
    latest per organization and question; the reminders its people recognised."""
    record = AnswerRecord()
    sent: list[tuple[float, str, dict[str, str], bool]] = []
    for r in sim.log.of_kind("inbound_sms", "link_post", "gather", "sms", "email"):
        if r.sid in other_ids:
            continue
        if r.kind in ("sms", "email"):
            accepted = r.status in (201, 250) or r.result == "accepted"
            if r.reminded and accepted and r.to and r.to.lower() in owner:
                record.reminded.add(owner[r.to.lower()])
            continue
        if not r.answers or r.status != 200:
            continue
        who = r.from_ if r.kind == "inbound_sms" else r.to
        if r.kind == "inbound_sms" and reference not in (r.response or ""):
            continue  # the relay's answer names another alert
        if who and who.lower() in owner:
            sent.append((r.sent_mono or r.mono, owner[who.lower()], r.answers, r.reminded))
    for _, org, answers, reminded in sorted(sent, key=lambda item: item[0]):
        record.latest.setdefault(org, {}).update(answers)
        if reminded:
            record.after_reminder.add(org)
    return record


def reminded_orgs(session: Session, alert_id: int) -> set[str]:
    """Organizations the relay sent a reminder (an SMS or email after the first attempt) that
    the provider took; one still queued when the exercise closed was never sent."""
    return set(
        session.scalars(
            select(Organization.code)
            .join(Recipient, Recipient.organization_id == Organization.id)
            .join(Delivery, Delivery.recipient_id == Recipient.id)
            .where(
                Delivery.alert_id == alert_id,
                Delivery.channel.in_(("sms", "email")),
                Delivery.attempt > 1,
                Delivery.sent_at.is_not(None),
            )
        )
    )


def _stored(question: Question, value: str) -> int | str:
    try:
        return question.check(value)
    except AnswerError:
        return value  # the relay must have refused it too: shows as a mismatch


def expected_tally(
    names: Sequence[str], record: AnswerRecord, kinds: dict[str, str]
) -> dict[str, Any]:
    """The tallies the relay should show, counted from the simulator's record alone."""
    questions = {q.id: q for q in all_questions(names)}
    per_question: dict[str, dict[str, Any]] = {
        q.id: {"answered": 0, "options": {}, "sum": 0, "texts": set()} for q in questions.values()
    }
    critical: set[tuple[str, str]] = set()
    complete = 0
    for org, answers in record.latest.items():
        asked = questions_for(names, kinds.get(org, ""))
        if all(q.id in answers for q in asked if q.required):
            complete += 1
        for qid, raw in answers.items():
            q = questions[qid]
            value = _stored(q, raw)
            entry = per_question[qid]
            entry["answered"] += 1
            if q.kind in ("choice", "yes_no"):
                entry["options"][str(value)] = entry["options"].get(str(value), 0) + 1
            elif q.kind == "number" and isinstance(value, int):
                entry["sum"] += value
            else:
                entry["texts"].add((org, value))
            if q.is_critical(value):
                critical.add((org, qid))
    return {"questions": per_question, "critical": critical, "complete": complete}


def print_situation(
    report: dict[str, Any], reminded: int, after: int, remind_after: timedelta, speed: float
) -> None:
    answers = report["answers"]
    done = report["time_to_required_answers_s"]
    median = f", median {done['median'] / 60:.1f} min" if done["median"] is not None else ""
    console.print(
        f"\n[bold]状況の報告 situation report[/] ({', '.join(answers['questionnaires'])}): "
        f"required answers from {answers['organizations_answered_required']}/"
        f"{answers['organizations_asked']} organizations{median} (simulated)"
    )
    table = Table("question", "asked", "answered", "answers")
    for q in answers["questions"]:
        if "options" in q:
            shown = " · ".join(
                f"{q['option_labels'][n]} {count}" for n, count in q["options"].items()
            )
        elif "sum" in q:
            shown = f"total {q['sum']}"
        else:
            shown = f"{len(q.get('texts', []))} written"
        table.add_row(f"{q['label']} ({q['id']})", str(q["asked"]), str(q["answered"]), shown)
    console.print(table)
    critical = answers["critical"]
    orgs = sorted({c["org"] for c in critical})
    examples = "; ".join(f"{c['name']} {c['answer']}" for c in critical[:3])
    console.print(
        f"critical answers: {len(critical)} from {len(orgs)} organizations"
        + (f" (e.g. {examples})" if examples else "")
    )
    minutes = remind_after.total_seconds() / 60
    console.print(
        f"reminders: {reminded} organizations that acknowledged without the required answers "
        f"were reminded {minutes:g} min after acknowledging ({minutes * 60 / speed:g} s here); "
        f"{after} of them answered after the reminder"
    )
    console.print(
        f"still without the required answers: "
        f"{len(answers['acknowledged_without_required_answers'])} organizations that acknowledged"
    )


def verify_situation(
    report: dict[str, Any],
    names: Sequence[str],
    record: AnswerRecord,
    kinds: dict[str, str],
    relay_reminded: set[str],
) -> list[str]:
    """Where the report's tallies and the simulator's record disagree."""
    answers = report["answers"]
    expected = expected_tally(names, record, kinds)
    problems = []
    for q in answers["questions"]:
        want = expected["questions"][q["id"]]
        if q["answered"] != want["answered"]:
            problems.append(
                f"{q['id']}: report says {q['answered']} answered, "
                f"the simulator's people answered {want['answered']}"
            )
        if "options" in q:
            got = {n: c for n, c in q["options"].items() if c}
            if got != want["options"]:
                problems.append(f"{q['id']}: report {got}, simulator {want['options']}")
        if "sum" in q and q["sum"] != want["sum"]:
            problems.append(f"{q['id']}: report totals {q['sum']}, simulator {want['sum']}")
        if "texts" in q:
            got_texts = {(t["org"], t["text"]) for t in q["texts"]}
            if got_texts != want["texts"]:
                problems.append(f"{q['id']}: {len(got_texts ^ want['texts'])} texts differ")
    got_critical = {(c["org"], c["question"]) for c in answers["critical"]}
    if got_critical != expected["critical"]:
        problems.append(
            f"critical answers: report {len(got_critical)}, simulator {len(expected['critical'])}"
        )
    if answers["organizations_answered_required"] != expected["complete"]:
        problems.append(
            f"report says {answers['organizations_answered_required']} organizations gave the "
            f"required answers; the simulator's people gave them for {expected['complete']}"
        )
    if relay_reminded != record.reminded:
        problems.append(
            f"the relay reminded {len(relay_reminded)} organizations; the simulator's people "
            f"got reminders for {len(record.reminded)}"
        )
    return problems
