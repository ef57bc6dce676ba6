"""Issuing an alert: validate, resolve the audience, render, plan — in one transaction.

Nothing is published here: the caller commits, then runs the outbox (SPEC 4.1: the alert and
its plan are committed before any task is queued).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import exists, insert, select
from sqlalchemy.orm import Session

from relay import audit
from relay.config import Settings
from relay.delivery import outbox
from relay.delivery.states import PLANNED, QUEUED
from relay.directory.audience import Audience, AudienceError, Target, resolve
from relay.messages import (
    Channel,
    MessageContext,
    MessageError,
    RenderedMessage,
    SegmentBudgetError,
    answer_options,
    cap_info,
    check_budget,
    reference_code,
    render,
    validate,
)
from relay.models import Alert, Delivery, Recipient
from relay.replies.escalation import first_step
from relay.replies.links import link_url, make_token

CHANNELS: tuple[str, ...] = ("sms", "voice", "email")
MODES = ("blast", "cascade")
STATUSES = ("Actual", "Exercise", "Test")
LINK_LIFETIME = timedelta(days=3)
# The cascade's default step delays (see IssueRequest).
VOICE_AFTER = timedelta(minutes=2)
NEXT_CONTACT_AFTER = timedelta(minutes=4)
RECALL_AFTER = timedelta(minutes=5)
# Recipients planned and written per step; bounds the memory a large alert takes.
PLAN_SLICE = 2_000


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


def _new_reference(session: Session) -> str:
    for _ in range(50):
        code = reference_code(secrets.token_bytes(8))
        if code.isalpha() or code.isdigit():
            continue  # codes mix letters and digits, so a reply parser never takes a word
        if not session.scalar(select(exists().where(Alert.reference == code))):
            return code
    raise IssueError("could not find a free reference code")  # ~1M codes: not in practice


def _paths(target: Target) -> dict[str, str]:
    """Where each channel reaches this contact: SMS only to a mobile; calls to the mobile,
    else the landline (or IP phone); email to the address."""
    by_kind = target.paths
    found: dict[str, str] = {}
    mobile = by_kind.get("mobile")
    if mobile is not None and mobile[1] == "mobile":
        found["sms"] = mobile[0]
    voice = mobile or by_kind.get("landline")
    if voice is not None:
        found["voice"] = voice[0]
    if "email" in by_kind:
        found["email"] = by_kind["email"][0]
    return found


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
    level = req.variables.get("level")
    alert = Alert(
        identifier=f"urn:uuid:{uuid.uuid4()}",
        sender=settings.mail_from,
        sent_at=now,
        status=req.status,
        msg_type=req.msg_type,
        references=list(req.references),
        note=req.note,
        category=info.category,
        event=info.event,
        urgency=info.urgency,
        severity=info.severity,
        certainty=info.certainty,
        response_type=info.response_type,
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
            "time_scale": req.time_scale,
        },
        issued_by=req.issued_by,
        state="dispatching",
        supersedes_id=req.supersedes_id,
        drill_run_id=req.drill_run_id,
    )
    session.add(alert)
    session.flush()

    # Coverage first: every organization's primary contact before anyone's alternate.
    ordered = sorted(contacts, key=lambda c: (c.priority, c.org_code))
    primaries = {
        c.organization_id: c.contact_id for c in sorted(contacts, key=lambda c: -c.priority)
    }
    over_budget: list[str] = []
    planned = 0
    # Written a slice at a time, so memory holds one slice of rendered messages, not the
    # whole alert's (100,000 recipients: 1.2 GB before); still one transaction (SPEC 4.1).
    for start in range(0, len(ordered), PLAN_SLICE):
        plans = [
            _plan_contact(req, alert, target, start + offset, primaries, now)
            for offset, target in enumerate(ordered[start : start + PLAN_SLICE])
        ]
        _insert_recipients(session, plans)
        rows = _plan_deliveries(settings, req, alert, plans, now, planned, over_budget)
        if rows:
            session.execute(insert(Delivery), rows)
        planned += len(rows)
    if not planned:
        raise IssueError("no recipient can be reached on the chosen channels")
    queue = outbox.queue_for(req.status)
    outbox.add(session, "dispatch_alert", alert_id=alert.id, queue=queue)
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
        audit.record(
            session,
            "relay",
            "alert.sms_over_budget",
            target=f"alert {alert.id}",
            summary=f"{len(over_budget)} SMS over the template's segment budget",
            examples=over_budget[:5],
        )
    return alert


@dataclass
class _ContactPlan:
    target: Target
    recipient: dict[str, Any]  # the recipients row; "id" set once written
    paths: dict[str, str]
    channels: list[str]  # the alert's channels this contact can be reached on
    now: set[str]  # those sent at once; the rest wait for the escalation


def _plan_contact(
    req: IssueRequest,
    alert: Alert,
    target: Target,
    position: int,
    primaries: dict[int, int],
    now: datetime,
) -> _ContactPlan:
    paths = _paths(target)
    chosen = [ch for ch in req.channels if ch in paths]
    recipient: dict[str, Any] = {
        "alert_id": alert.id,
        "contact_id": target.contact_id,
        "organization_id": target.organization_id,
        "position": position,
        "state": "active",
        "step": 0,
        "next_action_at": None,
    }
    now_channels = set(chosen)
    if req.mode == "cascade":
        if primaries[target.organization_id] == target.contact_id:
            now_channels, recipient["step"], delay = first_step(set(chosen), alert.escalation)
            # Nothing reaches this contact on these channels: the alternate's turn now.
            recipient["next_action_at"] = now + timedelta(seconds=delay if chosen else 0)
        else:
            now_channels, recipient["state"] = set(), "waiting"  # started by the escalation
    return _ContactPlan(target, recipient, paths, chosen, now_channels)


def _insert_recipients(session: Session, plans: list[_ContactPlan]) -> None:
    """Write the recipients in one INSERT ... RETURNING and give each its id.

    Set-based rather than through the ORM's unit of work, which took a third of the planning
    time of a large alert (ops/bench)."""
    stmt = insert(Recipient).returning(Recipient.id, sort_by_parameter_order=True)
    ids = session.execute(stmt, [p.recipient for p in plans]).scalars().all()
    for plan, recipient_id in zip(plans, ids, strict=True):
        plan.recipient["id"] = recipient_id


def _plan_deliveries(
    settings: Settings,
    req: IssueRequest,
    alert: Alert,
    plans: list[_ContactPlan],
    now: datetime,
    first_position: int,
    over_budget: list[str],
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for plan in plans:
        for channel in plan.channels:
            message = _render(
                settings, req, alert, plan.target, plan.recipient["id"], channel, now, over_budget
            )
            queued = channel in plan.now
            rows.append(
                {
                    "alert_id": alert.id,
                    "recipient_id": plan.recipient["id"],
                    "channel": channel,
                    "attempt": 1,
                    "position": first_position + len(rows),
                    "address": plan.paths[channel],
                    "language": plan.target.language,
                    "subject": message.subject,
                    "body": message.text,
                    "html": message.html,
                    "segments": message.segments,
                    "state": QUEUED if queued else PLANNED,
                    "due_at": now if queued else None,
                    "created_at": now,
                }
            )
    return rows


def _render(
    settings: Settings,
    req: IssueRequest,
    alert: Alert,
    target: Target,
    recipient_id: int,
    channel: str,
    now: datetime,
    over_budget: list[str],
) -> RenderedMessage:
    ack_url = None
    if channel != "voice":
        token = make_token(settings.secret_key, recipient_id, channel, now + LINK_LIFETIME)
        ack_url = link_url(settings.public_url, token)
    context = MessageContext(
        status=req.status,
        sent_at=now,
        reference=alert.reference,
        ack_url=ack_url,
        two_way_sms=settings.twilio_two_way_sms,
        org_name=target.org_name,
        contact_name=target.name,
    )
    # _check admitted only known channels
    message = render(req.template, cast(Channel, channel), target.language, req.variables, context)
    if channel == "sms":
        try:
            check_budget(req.template, message)
        except SegmentBudgetError as exc:
            if req.status != "Actual":
                raise IssueError(f"SMS too long for {target.org_code}: {exc}") from None
            # A real alert is never held back for its length: it goes, costing more segments,
            # and the overrun is recorded for whoever maintains the template.
            over_budget.append(f"{target.org_code}: {exc}")
    return message
