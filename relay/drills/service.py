"""Scheduled drills (SPEC 4.4): the database decides what has fired.

A tick claims due schedules (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite transactions are
exclusive), compares-and-swaps each one's next fire time, and inserts the run — unique on
(schedule, fire time) — in the same transaction, with an outbox row that starts it. So any
number of schedulers, a restart mid-firing, or a redelivered task give one run per fire time.

After downtime, the fire times missed collapse into one catch-up run for the latest of them if
it is within the schedule's grace period; otherwise that run is recorded as `missed`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Result, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from relay import audit
from relay.alerts.issuing import (
    CHANNELS,
    NEXT_CONTACT_AFTER,
    RECALL_AFTER,
    REMIND_AFTER,
    REMINDERS,
    VOICE_AFTER,
    IssueError,
    IssueRequest,
    check_questions,
    issue_alert,
)
from relay.config import Settings
from relay.delivery import outbox
from relay.directory.audience import Audience, AudienceError, parse_audience
from relay.drills.cron import CronError, fire_times_between, next_fire_times
from relay.models import Alert, DrillRun, DrillSchedule

log = logging.getLogger(__name__)


class DrillError(ValueError):
    """A schedule cannot be created or run as asked; the message says why."""


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    cron: str
    template: str = "drill"
    audience: str = "all"
    channels: tuple[str, ...] = CHANNELS
    mode: str = "cascade"
    ack_within: timedelta = timedelta(minutes=30)
    variables: dict[str, str] | None = None
    enabled: bool = True
    grace: timedelta = timedelta(hours=1)
    voice_after: timedelta = VOICE_AFTER  # the cascade's defaults (ops/REACH.md)
    next_contact_after: timedelta = NEXT_CONTACT_AFTER
    recall_after: timedelta | None = RECALL_AFTER
    time_scale: float = 1.0  # the demo's compressed clock; 1 for a real drill
    # The situation report the drill's alert asks (issue 16) and its reminders.
    questions: tuple[str, ...] = ()
    remind_after: timedelta = REMIND_AFTER
    reminders: int = REMINDERS


def save_schedule(
    session: Session, spec: ScheduleSpec, actor: str, now: datetime | None = None
) -> tuple[DrillSchedule, list[datetime]]:
    """Create or replace a schedule; return it with its next five fire times."""
    now = now or datetime.now(UTC)
    if not spec.name.strip():
        raise DrillError("name is required")
    try:
        upcoming = next_fire_times(spec.cron, now, 5)
        selector: Audience = parse_audience(spec.audience)
    except (CronError, AudienceError) as exc:
        raise DrillError(str(exc)) from None
    if not upcoming:
        raise DrillError(f"cron {spec.cron!r} never fires")
    bad = [c for c in spec.channels if c not in CHANNELS]
    if bad:
        raise DrillError(f"unknown channel(s): {', '.join(bad)}")
    try:
        check_questions(spec.questions, spec.reminders, spec.remind_after)
    except IssueError as exc:
        raise DrillError(str(exc)) from None
    schedule = session.scalars(select(DrillSchedule).where(DrillSchedule.name == spec.name)).first()
    if schedule is None:
        schedule = DrillSchedule(name=spec.name)
        session.add(schedule)
    schedule.cron = spec.cron
    schedule.template = spec.template
    schedule.variables = dict(spec.variables or {})
    schedule.audience = selector.as_dict()
    schedule.channels = list(spec.channels)
    schedule.mode = spec.mode
    schedule.ack_within_s = int(spec.ack_within.total_seconds())
    escalation: dict[str, Any] = {
        "voice_after_s": spec.voice_after.total_seconds(),
        "next_contact_after_s": spec.next_contact_after.total_seconds(),
        "recall_after_s": (
            None if spec.recall_after is None else spec.recall_after.total_seconds()
        ),
        "time_scale": spec.time_scale,
    }
    if spec.questions:  # kept with the timing: no column of its own (no migration)
        escalation |= {
            "questions": list(spec.questions),
            "remind_after_s": spec.remind_after.total_seconds(),
            "reminders": spec.reminders,
        }
    schedule.escalation = escalation
    schedule.grace_s = int(spec.grace.total_seconds())
    schedule.enabled = spec.enabled
    schedule.next_fire_at = upcoming[0].astimezone(UTC) if spec.enabled else None
    session.flush()
    audit.record(
        session,
        actor,
        "drill.schedule",
        target=f"drill {spec.name}",
        summary=f"cron {spec.cron!r}, enabled={spec.enabled}",
    )
    return schedule, upcoming


def _rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE matched: the compare-and-swap's verdict."""
    return int(cast(CursorResult[Any], result).rowcount)


def _due(session: Session, now: datetime) -> list[DrillSchedule]:
    stmt = select(DrillSchedule).where(DrillSchedule.enabled, DrillSchedule.next_fire_at <= now)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


def _insert_run(
    session: Session, schedule_id: int | None, fire_time: datetime, state: str
) -> DrillRun | None:
    run = DrillRun(schedule_id=schedule_id, fire_time=fire_time, state=state)
    try:
        with session.begin_nested():
            session.add(run)
    except IntegrityError:
        return None  # this fire time already has its run
    return run


def tick(session: Session, now: datetime | None = None) -> int:
    """Fire what is due; return how many runs were created (started or missed)."""
    now = now or datetime.now(UTC)
    created = 0
    for schedule in _due(session, now):
        expected = schedule.next_fire_at
        assert expected is not None
        slots = fire_times_between(schedule.cron, expected, now) or [expected]
        following = next_fire_times(schedule.cron, now, 1)
        new_next = following[0].astimezone(UTC) if following else None
        swapped = _rowcount(
            session.execute(
                update(DrillSchedule)
                .where(DrillSchedule.id == schedule.id, DrillSchedule.next_fire_at == expected)
                .values(next_fire_at=new_next)
                .execution_options(synchronize_session=False)
            )
        )
        if swapped != 1:
            continue  # another scheduler moved it first
        latest = slots[-1].astimezone(UTC)
        late = now - latest
        state = "pending" if late <= timedelta(seconds=schedule.grace_s) else "missed"
        run = _insert_run(session, schedule.id, latest, state)
        if run is None:
            continue
        created += 1
        if state == "pending":
            outbox.add(session, "run_drill", run_id=run.id, queue=outbox.queue_for("Exercise"))
        if len(slots) > 1 or state == "missed":
            audit.record(
                session,
                "scheduler",
                "drill.missed" if state == "missed" else "drill.catch_up",
                target=f"drill {schedule.name}",
                summary=f"{len(slots)} fire time(s) due, latest {latest.isoformat()} "
                f"{'beyond' if state == 'missed' else 'within'} the grace period",
            )
            log.warning("drill %s: %d slot(s) due, run %s", schedule.name, len(slots), state)
    return created


def run_now(session: Session, name: str, actor: str, now: datetime | None = None) -> DrillRun:
    """`relay drill run NAME`: a run for now, through the same path as a scheduled one."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    schedule = session.scalars(select(DrillSchedule).where(DrillSchedule.name == name)).first()
    if schedule is None:
        raise DrillError(f"no drill schedule named {name!r}")
    run = _insert_run(session, schedule.id, now, "pending")
    if run is None:
        raise DrillError("a run for this second already exists; try again")
    outbox.add(session, "run_drill", run_id=run.id, queue=outbox.queue_for("Exercise"))
    audit.record(session, actor, "drill.run", target=f"drill {name}", summary="fired by hand")
    return run


def start_run(
    session: Session, settings: Settings, run_id: int, now: datetime | None = None
) -> int | None:
    """The run's task: claim pending → running and issue its Exercise alert. A redelivered
    task finds the run already claimed and does nothing. Returns the alert id."""
    now = now or datetime.now(UTC)
    claimed = _rowcount(
        session.execute(
            update(DrillRun)
            .where(DrillRun.id == run_id, DrillRun.state == "pending")
            .values(state="running", started_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    if claimed != 1:
        return None
    run = session.get(DrillRun, run_id)
    assert run is not None
    schedule = session.get(DrillSchedule, run.schedule_id) if run.schedule_id else None
    if schedule is None:
        run.state = "failed"
        return None
    request = IssueRequest(
        template=schedule.template,
        audience=Audience.from_dict(schedule.audience),
        variables=dict(schedule.variables),
        channels=tuple(schedule.channels),
        mode=schedule.mode,
        ack_within=timedelta(seconds=schedule.ack_within_s),
        status="Exercise",
        issued_by=f"drill:{schedule.name}",
        drill_run_id=run.id,
        note=f"drill run {run.id} of schedule {schedule.name}",
        voice_after=timedelta(seconds=schedule.escalation.get("voice_after_s", 300)),
        next_contact_after=timedelta(seconds=schedule.escalation.get("next_contact_after_s", 600)),
        recall_after=_recall_after(schedule.escalation),
        time_scale=float(schedule.escalation.get("time_scale", 1.0)),
        questions=tuple(schedule.escalation.get("questions", ())),
        remind_after=timedelta(
            seconds=schedule.escalation.get("remind_after_s", REMIND_AFTER.total_seconds())
        ),
        reminders=int(schedule.escalation.get("reminders", REMINDERS)),
    )
    try:
        with session.begin_nested():
            alert = issue_alert(session, settings, request, now)
    except IssueError as exc:
        run.state = "failed"
        run.finished_at = now
        audit.record(
            session, "scheduler", "drill.failed", target=f"drill {schedule.name}", summary=str(exc)
        )
        return None
    run.alert_id = alert.id
    return alert.id


def schedules_overview(session: Session) -> list[dict[str, Any]]:
    rows = []
    for schedule in session.scalars(select(DrillSchedule).order_by(DrillSchedule.name)):
        runs = list(
            session.scalars(
                select(DrillRun)
                .where(DrillRun.schedule_id == schedule.id)
                .order_by(DrillRun.fire_time.desc())
                .limit(5)
            )
        )
        rows.append(
            {
                "name": schedule.name,
                "cron": schedule.cron,
                "enabled": schedule.enabled,
                "template": schedule.template,
                "next_fire_at": schedule.next_fire_at,
                "runs": [
                    {"id": r.id, "fire_time": r.fire_time, "state": r.state, "alert_id": r.alert_id}
                    for r in runs
                ],
                "missed": sum(1 for r in runs if r.state == "missed"),
            }
        )
    return rows


def close_due(session: Session, now: datetime | None = None) -> int:
    """A drill ends at its deadline: pending steps stop, the alert closes and the run is done
    (its report is then final). Real alerts are never closed by the clock."""
    from relay.alerts.lifecycle import stop_pending  # lifecycle imports issuing, as we do

    now = now or datetime.now(UTC)
    closed = 0
    due = session.scalars(
        select(Alert).where(
            Alert.state == "active", Alert.drill_run_id.is_not(None), Alert.ack_deadline <= now
        )
    )
    for alert in due:
        stop_pending(session, alert)
        alert.state, alert.closed_at = "closed", now
        session.execute(
            update(DrillRun)
            .where(DrillRun.id == alert.drill_run_id, DrillRun.state == "running")
            .values(state="done", finished_at=now)
        )
        closed += 1
    return closed


def _recall_after(escalation: dict[str, Any]) -> timedelta | None:
    """A schedule saved before second calls existed has no entry: it gets the default."""
    if "recall_after_s" not in escalation:
        return RECALL_AFTER
    seconds = escalation["recall_after_s"]
    return None if seconds is None else timedelta(seconds=seconds)
