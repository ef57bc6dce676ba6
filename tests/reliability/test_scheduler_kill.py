"""The scheduler process SIGKILLed while a drill fires — right after the run was written, and
again while its replacement starts — then a third one: exactly one run, one Exercise alert,
one message per recipient."""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from relay.db import transaction
from relay.drills import service
from relay.models import Alert, DrillRun, DrillSchedule
from tests.harness import Stack, Worker, wait_until
from tests.reliability.faults import bulk_directory, fresh_pg, report

pytestmark = pytest.mark.slow
__all__ = ["fresh_pg"]

RECIPIENTS = 30


def _runs(url: str) -> list[tuple[str, int | None]]:
    with transaction(url) as session:
        return [(r.state, r.alert_id) for r in session.scalars(select(DrillRun))]


def test_scheduler_killed_during_a_drill_firing_gives_one_run(
    fresh_pg: str, tmp_path: Path
) -> None:
    csv_path = tmp_path / "dir.csv"
    bulk_directory(csv_path, RECIPIENTS, "d")
    rng = random.Random()
    with Stack(fresh_pg, tmp_path, workers=1) as stack:
        stack.import_directory(csv_path)
        fire_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        with transaction(fresh_pg) as session:
            schedule, _ = service.save_schedule(
                session,
                service.ScheduleSpec("yearly", "0 10 1 1 *", channels=("sms",), mode="blast"),
                actor="test",
            )
            schedule.next_fire_at = fire_at  # due in 3 s; the next after it is next year

        def scheduler(n: int) -> Worker:
            worker = Worker(
                stack.env, log=tmp_path / f"scheduler-{n}.log", args=["scheduler", "--tick", "0.2"]
            ).start()
            stack.workers.append(worker)
            return worker

        first = scheduler(1)
        # Kill 1: the moment the run is on record (its task may or may not be published yet).
        wait_until(lambda: _runs(fresh_pg), 60, "the drill fired", interval=0.01)
        first.kill()
        state_at_kill = _runs(fresh_pg)
        # Kill 2: a replacement, killed at a random moment of its first second.
        second = scheduler(2)
        delay = rng.uniform(0.0, 1.0)
        time.sleep(delay)  # a random kill point, not a synchronisation
        second.kill()
        scheduler(3)
        wait_until(lambda: _runs(fresh_pg)[0][1] is not None, 60, "the run issued its alert")
        alert_id = _runs(fresh_pg)[0][1]
        assert alert_id is not None
        stack.wait_sent(alert_id, timeout=60)
        with transaction(fresh_pg) as session:
            alerts = list(session.scalars(select(Alert.id).where(Alert.drill_run_id.is_not(None))))
            next_fire = session.scalars(select(DrillSchedule.next_fire_at)).one()
        counts = Counter(r.to for r in stack.sim.log.sms_requests() if r.status == 201)
        report(
            "scheduler killed during a drill firing",
            run_at_first_kill=state_at_kill,
            second_kill_after_s=round(delay, 2),
            runs=len(_runs(fresh_pg)),
            alerts=len(alerts),
            max_messages_per_recipient=max(counts.values()),
        )
        assert len(_runs(fresh_pg)) == 1 and alerts == [alert_id]
        assert len(counts) == RECIPIENTS and set(counts.values()) == {1}
        assert next_fire is not None and next_fire.year == fire_at.year + 1
