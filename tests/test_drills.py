"""Drill schedules: fire times in Asia/Tokyo, exactly one run per fire time, catch-up and
missed runs — decided by the database, whatever number of schedulers tick."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from relay.config import load_settings
from relay.db import session_factory, transaction
from relay.directory.csv_format import parse_directory
from relay.directory.store import apply_directory
from relay.drills import service
from relay.drills.cron import CronError, next_fire_times
from relay.models import Alert, AuditEvent, DrillRun, DrillSchedule, OutboxMessage
from tests.conftest import SAMPLE_CSV

MONDAY_10_JST = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # 2026-11-30 10:00 JST is a Monday


def test_crontab_weekdays_are_crontab_weekdays() -> None:
    times = next_fire_times("0 10 * * 1", datetime(2026, 11, 29, tzinfo=UTC), 3)
    assert [t.strftime("%a %H:%M %z") for t in times] == ["Mon 10:00 +0900"] * 3
    sunday = next_fire_times("0 10 * * 0", datetime(2026, 11, 29, 2, tzinfo=UTC), 1)[0]
    assert sunday.strftime("%a") == "Sun"
    quarterly = next_fire_times("0 10 1-7 1,4,7,10 1", datetime(2026, 11, 29, tzinfo=UTC), 2)
    assert [t.strftime("%Y-%m-%d %a") for t in quarterly] == ["2027-01-04 Mon", "2027-04-05 Mon"]
    for bad in ("0 10 * *", "61 * * * *", "0 10 * * 8"):
        with pytest.raises(CronError):
            next_fire_times(bad, MONDAY_10_JST)


def _schedule(db_url: str, cron: str = "*/10 * * * *", **kw: object) -> None:
    spec = service.ScheduleSpec(name="weekly", cron=cron, **kw)  # type: ignore[arg-type]
    with transaction(db_url) as session:
        service.save_schedule(session, spec, actor="test", now=MONDAY_10_JST - timedelta(minutes=1))


def _runs(db_url: str) -> list[tuple[datetime, str]]:
    with transaction(db_url) as session:
        return [
            (r.fire_time, r.state)
            for r in session.scalars(select(DrillRun).order_by(DrillRun.fire_time))
        ]


def test_save_shows_next_five_and_validates(db_url: str) -> None:
    with transaction(db_url) as session:
        schedule, upcoming = service.save_schedule(
            session,
            service.ScheduleSpec("q", "0 10 * * 1"),
            actor="test",
            now=MONDAY_10_JST - timedelta(hours=1),
        )
        assert len(upcoming) == 5 and schedule.next_fire_at == MONDAY_10_JST
        for spec, message in [
            (service.ScheduleSpec("x", "nonsense"), "5 fields"),
            (service.ScheduleSpec("x", "0 10 * * 1", audience="kind:temple"), "unknown kind"),
            (service.ScheduleSpec("x", "0 10 * * 1", channels=("fax",)), "unknown channel"),
            (service.ScheduleSpec("x", "0 10 * * 1", questions=("census",)), "unknown quest"),
            (
                service.ScheduleSpec("x", "0 10 * * 1", questions=("base-status",), reminders=3),
                "reminders: 0, 1 or 2",
            ),
        ]:
            with pytest.raises(service.DrillError, match=message):
                service.save_schedule(session, spec, actor="test")


def test_each_fire_time_fires_once(db_url: str) -> None:
    _schedule(db_url)
    sessions = session_factory(db_url)
    for minutes in (0, 0, 1, 5, 9, 10, 10, 11, 20):
        with sessions.begin() as session:
            service.tick(session, MONDAY_10_JST + timedelta(minutes=minutes))
    assert _runs(db_url) == [
        (MONDAY_10_JST, "pending"),
        (MONDAY_10_JST + timedelta(minutes=10), "pending"),
        (MONDAY_10_JST + timedelta(minutes=20), "pending"),
    ]
    with transaction(db_url) as session:
        topics = [m.topic for m in session.scalars(select(OutboxMessage))]
    assert topics == ["run_drill"] * 3


def test_downtime_collapses_into_one_catch_up(db_url: str) -> None:
    _schedule(db_url, grace=timedelta(minutes=15))
    with session_factory(db_url).begin() as session:
        # Down from 09:59 to 10:35: slots 10:00, 10:10, 10:20, 10:30 are due; 10:30 is
        # 5 minutes late, within the grace: one catch-up run for it, the rest collapsed.
        assert service.tick(session, MONDAY_10_JST + timedelta(minutes=35)) == 1
    assert _runs(db_url) == [(MONDAY_10_JST + timedelta(minutes=30), "pending")]
    with transaction(db_url) as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "drill.catch_up")
        ).one()
        assert "4 fire time(s)" in event.summary
        schedule = session.scalars(select(DrillSchedule)).one()
        assert schedule.next_fire_at == MONDAY_10_JST + timedelta(minutes=40)


def test_beyond_grace_is_recorded_missed(db_url: str) -> None:
    _schedule(db_url, cron="0 10 * * 1", grace=timedelta(minutes=15))
    with session_factory(db_url).begin() as session:
        service.tick(session, MONDAY_10_JST + timedelta(hours=2))
    assert _runs(db_url) == [(MONDAY_10_JST, "missed")]
    with transaction(db_url) as session:
        schedule = session.scalars(select(DrillSchedule)).one()
        assert schedule.next_fire_at == MONDAY_10_JST + timedelta(days=7)
        assert session.scalars(select(OutboxMessage)).all() == []  # nothing to start
        assert [e.action for e in session.scalars(select(AuditEvent))][-1] == "drill.missed"


def test_concurrent_tickers_give_one_run_per_slot(db_url: str) -> None:
    _schedule(db_url, cron="* * * * *")
    sessions = session_factory(db_url)
    errors: list[BaseException] = []

    def ticker(offset: int) -> None:
        try:
            for minute in range(0, 30):
                moment = MONDAY_10_JST + timedelta(minutes=minute, seconds=offset)
                with sessions.begin() as session:
                    service.tick(session, moment)
        except BaseException as exc:  # report in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=ticker, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    fire_times = [t for t, _ in _runs(db_url)]
    assert len(fire_times) == len(set(fire_times))
    assert fire_times[0] == MONDAY_10_JST and fire_times[-1] == MONDAY_10_JST + timedelta(
        minutes=29
    )


def test_a_drill_asks_its_situation_report_and_reminds(db_url: str) -> None:
    secret = "drill-test-secret-0123"
    settings = load_settings({"RELAY_DATABASE_URL": db_url, "RELAY_SECRET_KEY": secret})
    spec = service.ScheduleSpec(
        "quarterly",
        "0 10 1-7 1,4,7,10 1",
        questions=("damage-report", "base-status"),
        remind_after=timedelta(minutes=5),
        reminders=2,
    )
    with transaction(db_url) as session:
        apply_directory(session, parse_directory(SAMPLE_CSV.read_bytes()), actor="test")
        service.save_schedule(session, spec, actor="test")
        run = service.run_now(session, "quarterly", actor="test")
        alert_id = service.start_run(session, settings, run.id)
        assert alert_id is not None
        alert = session.get(Alert, alert_id)
        assert alert is not None and alert.status == "Exercise"
        assert alert.questions == ["damage-report", "base-status"]
        assert alert.escalation["remind_after_s"] == 300 and alert.escalation["reminders"] == 2
