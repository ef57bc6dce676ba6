"""One of two workers SIGKILLed at five random points of a 5,000-recipient fan-out (a new one
started each time): nobody is missed, and only requests in flight at a kill can go twice."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.harness import Stack, wait_until
from tests.reliability.faults import (
    accepted_per_recipient,
    bulk_directory,
    duplicates,
    fresh_pg,
    report,
)

pytestmark = pytest.mark.slow
__all__ = ["fresh_pg"]

RECIPIENTS = 5000
KILLS = 5


def test_five_worker_kills_during_one_fan_out(fresh_pg: str, tmp_path: Path) -> None:
    csv_path = tmp_path / "dir.csv"
    bulk_directory(csv_path, RECIPIENTS, "k")
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    # Kill points spread over the fan-out, at random counts of requests received.
    points = sorted(rng.sample(range(200, RECIPIENTS - 600), KILLS))
    env = {"RELAY_VISIBILITY_TIMEOUT": "8", "RELAY_CLAIM_LEASE": "5"}
    with Stack(
        fresh_pg, tmp_path, sms_rate=500, workers=2, concurrency=2, scheduler=True, env=env
    ) as stack:
        stack.import_directory(csv_path)
        alert_id = stack.issue(template="drill", mode="blast", channels=("sms",), status="Exercise")
        log = stack.sim.log
        in_flight_total = 0
        kills: list[tuple[int, int]] = []
        for point in points:
            wait_until(
                lambda p=point: len(log.sms_requests()) >= p, 120, f"{point} requests received"
            )
            workers = [w for w in stack.workers if w.args[0] == "worker"]
            victim = rng.choice([w for w in workers if w.proc and w.proc.poll() is None])
            victim.kill()
            stack.workers.remove(victim)
            in_flight = stack.states(alert_id).get("sending", 0)
            in_flight_total += in_flight
            kills.append((len(log.sms_requests()), in_flight))
            stack.start_worker()
        stack.wait_sent(alert_id, timeout=240)
        counts = accepted_per_recipient(log)
        report(
            "5 worker kills",
            seed=seed,
            recipients=RECIPIENTS,
            kills_at_requests_and_in_flight=kills,
            duplicates=duplicates(counts),
            bound=in_flight_total,
        )
        assert stack.sim.violations == []
        assert len(counts) == RECIPIENTS  # no recipient missed
        assert duplicates(counts) <= in_flight_total
