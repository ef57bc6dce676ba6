"""Two `relay scheduler` processes on one PostgreSQL database: exactly one drill run per fire
time, and a scheduler started after a missed fire time catches it up once (SPEC 4.4).

The schedulers' clock is shifted through RELAY_CLOCK_FILE (relay/clock.py), so a schedule
firing every minute is driven through five minutes, and a down-time, in seconds of wall time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from relay.db import transaction
from relay.drills import service
from relay.models import AuditEvent, DrillRun, DrillSchedule, OutboxMessage
from tests.conftest import TEST_BROKER, TEST_BROKER_PREFIX, _truncate, flush_test_broker
from tests.harness import Worker, wait_until

pytestmark = pytest.mark.slow
TICK = "0.3"


def _runs(url: str) -> list[tuple[datetime, str]]:
    with transaction(url) as session:
        rows = session.scalars(select(DrillRun).order_by(DrillRun.fire_time))
        return [(r.fire_time, r.state) for r in rows]


def _stays(predicate: Callable[[], bool], seconds: float, message: str) -> None:
    """An absence can only be observed over a window: `predicate` must hold throughout it
    (several ticks of every scheduler), checked as it goes."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert predicate(), message
        time.sleep(0.1)


def _set_clock(clock_file: Path, moment: datetime) -> None:
    """Make the schedulers' "now" equal `moment` (and run on from there)."""
    shift = (moment - datetime.now(UTC)).total_seconds()
    tmp = clock_file.with_suffix(".tmp")
    tmp.write_text(f"{shift:.3f}", encoding="utf-8")
    tmp.replace(clock_file)  # atomic: a scheduler never reads half a number


def test_two_schedulers_fire_each_minute_exactly_once(pg_url: str, tmp_path: Path) -> None:
    flush_test_broker()  # skips, saying why, without Redis
    _truncate(pg_url)
    clock_file = tmp_path / "clock"
    _set_clock(clock_file, datetime.now(UTC))
    env = {
        "RELAY_DATABASE_URL": pg_url,
        "RELAY_BROKER_URL": TEST_BROKER,
        "RELAY_BROKER_PREFIX": TEST_BROKER_PREFIX,
        "RELAY_WORKDIR": str(tmp_path / "work"),
        "RELAY_SECRET_KEY": "test-secret-key-0123456789",
        "RELAY_CLOCK_FILE": str(clock_file),
    }
    spec = service.ScheduleSpec(name="every-minute", cron="* * * * *", audience="district:金沢")
    with transaction(pg_url) as session:
        service.save_schedule(session, spec, actor="test")
        first = session.scalars(select(DrillSchedule.next_fire_at)).one()
    assert first is not None
    slots = [first + timedelta(minutes=k) for k in range(7)]

    schedulers = [
        Worker(env, log=tmp_path / f"scheduler-{n}.log", args=["scheduler", "--tick", TICK])
        for n in range(2)
    ]
    try:
        for s in schedulers:
            s.start()
        for k in range(5):
            _set_clock(clock_file, slots[k] + timedelta(seconds=1))
            wait_until(lambda k=k: len(_runs(pg_url)) == k + 1, 30, f"slot {k} never fired")
            _stays(lambda k=k: len(_runs(pg_url)) == k + 1, 1.5, f"slot {k} fired twice")
        assert _runs(pg_url) == [(slot, "pending") for slot in slots[:5]]

        # Both schedulers down across two fire times; one comes back within the grace period.
        for s in schedulers:
            s.stop()
        _set_clock(clock_file, slots[6] + timedelta(seconds=20))
        schedulers[0].start()
        wait_until(lambda: len(_runs(pg_url)) == 6, 30, "the missed fire time never ran")
        _stays(lambda: len(_runs(pg_url)) == 6, 1.5, "the catch-up ran more than once")
    finally:
        for s in schedulers:
            s.stop()

    assert _runs(pg_url)[-1] == (slots[6], "pending")  # slots 5 and 6 collapsed into one run
    with transaction(pg_url) as session:
        catch_up = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "drill.catch_up")
        ).one()
        assert "2 fire time(s)" in catch_up.summary
        started = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.topic == "run_drill")
        )
        assert started == 6  # one start per run, no more
    for n in range(2):
        log = (tmp_path / f"scheduler-{n}.log").read_text(encoding="utf-8")
        assert "Traceback" not in log and "failed" not in log, log[-2000:]
