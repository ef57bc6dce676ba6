"""One of two workers SIGKILLed at five random points of a 5,000-recipient fan-out (a new one
started each time): nobody is missed, and only requests in flight at a kill can go twice."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from relay.delivery.sending import Senders
from simulator import Behaviour, Population
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


def test_two_kills_with_the_defaults_resend_only_what_was_in_flight(
    fresh_pg: str, tmp_path: Path
) -> None:
    """Issue 15, with the settings users run (claim lease 60 s, visibility timeout 600 s,
    scheduler tick 2 s, two pool processes per worker): a 3,000-recipient SMS alert, one worker
    SIGKILLed at 25% and another at 50%, each replaced at once. Nobody is missed, the dead
    workers' share goes out within 90 s of the last kill, and each kill re-sends at most what a
    worker can have in flight (its processes x Senders.max_in_flight), not a chunk.

    The carrier reports "sent" only after 90 s, as in a surge when status callbacks lag: later
    than the claim lease, so only what the relay wrote itself keeps a row from being claimed
    again (a prompt callback would move it on and hide a missing record)."""
    recipients, rate = 3000, 150
    csv_path = tmp_path / "dir.csv"
    bulk_directory(csv_path, recipients, "d")
    slow_reports = Population(default=Behaviour(sms_sent_delay=90.0))
    with Stack(
        fresh_pg, tmp_path, slow_reports, sms_rate=rate, workers=2, concurrency=2,
        scheduler=True, scheduler_tick=None,
    ) as stack:  # fmt: skip
        assert stack.settings.claim_lease_s == 60 and stack.settings.visibility_timeout_s == 600
        stack.import_directory(csv_path)
        alert_id = stack.issue(template="drill", mode="blast", channels=("sms",), status="Exercise")
        log = stack.sim.log
        killed_at = 0.0
        for fraction in (0.25, 0.5):
            point = int(recipients * fraction)
            wait_until(lambda p=point: len(log.sms_requests()) >= p, 120, f"{point} requests")
            victim = next(w for w in stack.workers if w.args[0] == "worker")
            victim.kill()
            killed_at = time.monotonic()
            stack.workers.remove(victim)
            stack.start_worker()
        stack.wait_sent(alert_id, timeout=240)
        counts = accepted_per_recipient(log)
        last_request = max(r.mono for r in log.sms_requests())
        bound = 2 * Senders.max_in_flight  # two pool processes per killed worker
        report(
            "2 worker kills, defaults",
            recipients=recipients,
            duplicates=duplicates(counts),
            bound_per_kill=bound,
            sent_after_last_kill_s=round(last_request - killed_at, 1),
        )
        assert stack.sim.violations == []
        assert len(counts) == recipients  # no recipient missed
        assert duplicates(counts) <= 2 * bound
        assert last_request - killed_at <= 90
