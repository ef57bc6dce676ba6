"""Issuing an alert: validate, resolve the audience, write the alert and every recipient,
plan the first slice — in one transaction.

Nothing is published here: the caller commits, then runs the outbox. The alert and its
audience are committed before any task is queued; the first slice's sends go as soon as
they are, and the rest of the plan follows a slice at a time (relay/alerts/planning.py).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import exists, insert, select
from sqlalchemy.orm import Session

from relay import audit
from relay.alerts.planning import CHANNELS as CHANNELS
from relay.alerts.planning import PLAN_SLICE, paths, plan_slice, render_for
from relay.config import Settings
from relay.directory.audience import Audience, AudienceError, Target, resolve
from relay.messages import (
    MessageError,
    SegmentBudgetError,
    answer_options,
    cap_info,
    check_budget,
    reference_code,
    validate,
)
from relay.models import Alert, Recipient
from relay.questions.asked import check_choice
from relay.questions.catalog import QuestionnaireError
from relay.replies.escalation import first_step
from relay.replies.reminders import REMIND_AFTER as REMIND_AFTER  # drills use the defaults
from relay.replies.reminders import REMINDERS as REMINDERS

MODES = ("blast", "cascade")
STATUSES = ("Actual", "Exercise", "Test")
# The cascade's default step delays (see IssueRequest).
VOICE_AFTER = timedelta(minutes=2)
NEXT_CONTACT_AFTER = timedelta(minutes=4)
RECALL_AFTER = timedelta(minutes=5)


class IssueError(ValueError):
    """The alert cannot be issued as asked; nothing was written. The message says why."""


@dataclass(frozen=True)
class IssueRequest:
    template: str
    audience: Audience
    variables: dict[str, str] = field(default_factory=dict)
    channels: Sequence[str] = CHANNELS
    mode: str = "cascade"
    ack_within: timedelta = timedelta(minutes=15)
    status: str = "Actual"
    issued_by: str = "cli"
    msg_type: str = "Alert"
    references: Sequence[str] = ()
    supersedes_id: int | None = None
    drill_run_id: int | None = None
    note: str | None = None
    # A CAP document relayed as issued (relay/cap/importing.py): its own event, category,
    # urgency, severity, certainty and response_type instead of the template's placeholders.
    cap_fields: Mapping[str, str] | None = None
    # Questionnaires asked with the alert (templates/questions/<name>.toml; issue 16), and
    # the reminders to organizations that acknowledge without answering the required ones:
    # how long after their acknowledgement, and how many (0-2; relay/replies/reminders.py).
    questions: Sequence[str] = ()
    remind_after: timedelta = REMIND_AFTER
    reminders: int = REMINDERS
    # cascade timing: voice after this long without an acknowledgement, then the next contact.
    # Tuned on the simulated ward (ops/REACH.md): 2/4 min reach as many organizations within
    # 15 minutes as calling at once, for fewer calls; 5/10 reached ~5 points fewer.
    voice_after: timedelta = VOICE_AFTER
    next_contact_after: timedelta = NEXT_CONTACT_AFTER
    # A contact whose call met no answer, a machine, busy or a failure is called once more,
    # this long after the first call was placed (ops/REACH.md: people back from a short
    # absence); None: no second call.
    recall_after: timedelta | None = RECALL_AFTER
    # Calls accept a spoken はい as well as the key (False: keys only, as the 2015 system).
    speech_answers: bool = True
    # Simulated runs only (demo, comparisons): real seconds x time_scale = simulated seconds.
    # Reports show simulated minutes; a real alert always has 1.
    time_scale: float = 1.0


def _check(req: IssueRequest) -> None:
    bad = [c for c in req.channels if c not in CHANNELS]
    if bad or not req.channels:
        raise IssueError(f"channels: choose from {', '.join(CHANNELS)} (got {', '.join(bad)})")
    if req.mode not in MODES:
        raise IssueError(f"mode: blast or cascade, not {req.mode!r}")
    if req.status not in STATUSES:
        raise IssueError(f"status: one of {', '.join(STATUSES)}")
    if req.ack_within <= timedelta(0):
        raise IssueError("ack-within must be positive")
    try:
        validate(req.template, req.variables)
    except MessageError as exc:
        raise IssueError(str(exc)) from None
    check_questions(req.questions, req.reminders, req.remind_after)


def check_questions(names: Sequence[str], reminders: int, remind_after: timedelta) -> None:
    """Refuse (IssueError) questionnaires an alert cannot ask, or reminders out of range: at
    the issue, and where an alert is prepared for later (a drill schedule)."""
    if not 0 <= reminders <= 2 or remind_after <= timedelta(0):
        raise IssueError("reminders: 0, 1 or 2, after a positive delay (e.g. 10m)")
    try:
        check_choice(names)
    except QuestionnaireError as exc:
        raise IssueError(f"questions: {exc}") from None


def _new_reference(session: Session) -> str:
    for _ in range(50):
        code = reference_code(secrets.token_bytes(8))
        if code.isalpha() or code.isdigit():
            continue  # codes mix letters and digits, so a reply parser never takes a word
        if not session.scalar(select(exists().where(Alert.reference == code))):
            return code
    raise IssueError("could not find a free reference code")  # ~1M codes: not in practice


def issue_alert(
    session: Session, settings: Settings, req: IssueRequest, now: datetime | None = None
) -> Alert:
    """Write the alert, its recipients, their rendered deliveries and an outbox row."""
    now = now or datetime.now(UTC)
    _check(req)
    try:
        contacts = resolve(session, req.audience)
    except AudienceError as exc:
        raise IssueError(f"audience: {exc}") from None
    info = cap_info(req.template, "ja", req.variables)
    codes = {
        "category": info.category,
        "event": info.event,
        "urgency": info.urgency,
        "severity": info.severity,
        "certainty": info.certainty,
        "response_type": info.response_type,
        **(req.cap_fields or {}),
    }
    level = req.variables.get("level")
    alert = Alert(
        identifier=f"urn:uuid:{uuid.uuid4()}",
        sender=settings.mail_from,
        sent_at=now,
        status=req.status,
        msg_type=req.msg_type,
        references=list(req.references),
        note=req.note,
        category=codes["category"],
        event=codes["event"],
        urgency=codes["urgency"],
        severity=codes["severity"],
        certainty=codes["certainty"],
        response_type=codes["response_type"] or None,
        headline=info.headline,
        description=info.description,
        instruction=info.instruction,
        area_desc=str(req.variables.get("area", "金沢区")),
        reference=_new_reference(session),
        evacuation_level=int(level) if req.template == "evacuation" and level else None,
        template=req.template,
        variables=dict(req.variables),
        audience=req.audience.as_dict(),
        channels=list(req.channels),
        mode=req.mode,
        answer_options=[asdict(o) for o in answer_options(req.template, "ja")],
        ack_deadline=now + req.ack_within,
        escalation={
            "voice_after_s": int(req.voice_after.total_seconds()),
            "next_contact_after_s": int(req.next_contact_after.total_seconds()),
            "recall_after_s": (
                None if req.recall_after is None else int(req.recall_after.total_seconds())
            ),
            "speech_answers": req.speech_answers,
            "remind_after_s": int(req.remind_after.total_seconds()),
            "reminders": req.reminders if req.questions else 0,
            "time_scale": req.time_scale,
        },
        issued_by=req.issued_by,
        state="dispatching",
        supersedes_id=req.supersedes_id,
        drill_run_id=req.drill_run_id,
        questions=list(req.questions),
    )
    session.add(alert)
    session.flush()

    # Coverage first: every organization's primary contact before anyone's alternate.
    ordered = sorted(contacts, key=lambda c: (c.priority, c.org_code))
    if not any(ch in paths(t) for t in ordered for ch in req.channels):
        raise IssueError("no recipient can be reached on the chosen channels")
    primaries = {
        c.organization_id: c.contact_id for c in sorted(contacts, key=lambda c: -c.priority)
    }
    recipient_ids: list[int] = []
    for start in range(0, len(ordered), PLAN_SLICE):
        rows = [
            _recipient(req, alert, target, start + offset, primaries, now)
            for offset, target in enumerate(ordered[start : start + PLAN_SLICE])
        ]
        stmt = insert(Recipient).returning(Recipient.id, sort_by_parameter_order=True)
        recipient_ids += session.execute(stmt, rows).scalars().all()
    over_budget = _sms_over_budget(settings, req, alert, ordered, max(recipient_ids))
    if over_budget and req.status != "Actual":
        raise IssueError(f"SMS too long: {'; '.join(over_budget)}")
    first = {t.contact_id: t for t in ordered[:PLAN_SLICE]}
    plan_slice(session, settings, alert, targets=first, now=now)
    audit.record(
        session,
        req.issued_by,
        "alert.issue",
        target=f"alert {alert.id}",
        summary=f"{req.status} {req.template} to {len(ordered)} recipients ({alert.reference})",
        mode=req.mode,
        channels=list(req.channels),
    )
    if over_budget:
        # A real alert is never held back for its length: it goes, costing more segments,
        # and the overrun is recorded for whoever maintains the template.
        audit.record(
            session,
            "relay",
            "alert.sms_over_budget",
            target=f"alert {alert.id}",
            summary=f"SMS over the template's segment budget in {len(over_budget)} language(s)",
            examples=over_budget,
        )
    return alert


def _recipient(
    req: IssueRequest,
    alert: Alert,
    target: Target,
    position: int,
    primaries: dict[int, int],
    now: datetime,
) -> dict[str, Any]:
    """The recipients row of one contact: in a cascade, the organization's primary contact
    starts at once (its escalation timer set) and the others wait for the escalation."""
    chosen = {ch for ch in req.channels if ch in paths(target)}
    row: dict[str, Any] = {
        "alert_id": alert.id,
        "contact_id": target.contact_id,
        "organization_id": target.organization_id,
        "position": position,
        "state": "active",
        "step": 0,
        "next_action_at": None,
    }
    if req.mode == "cascade":
        if primaries[target.organization_id] == target.contact_id:
            _, row["step"], delay = first_step(chosen, alert.escalation)
            # Nothing reaches this contact on these channels: the alternate's turn now.
            row["next_action_at"] = now + timedelta(seconds=delay if chosen else 0)
        else:
            row["state"] = "waiting"
    return row


def _sms_over_budget(
    settings: Settings, req: IssueRequest, alert: Alert, targets: list[Target], last_id: int
) -> list[str]:
    """The SMS of each language against the template's segment budget, rendered for the
    language's longest names and the alert's highest recipient id: an SMS differs between
    recipients only by those, so this is the longest any of them gets."""
    if "sms" not in req.channels:
        return []

    def names(target: Target) -> int:
        return len(target.org_name) + len(target.name)

    longest: dict[str, Target] = {}
    for target in targets:
        held = longest.get(target.language)
        if "sms" in paths(target) and (held is None or names(target) > names(held)):
            longest[target.language] = target
    problems = []
    for language, target in sorted(longest.items()):
        try:
            check_budget(req.template, render_for(settings, alert, target, last_id, "sms"))
        except SegmentBudgetError as exc:
            problems.append(f"{language}: {exc}")
    return problems
