"""Redis (broker and rate limiter) stopped for 10 s in the middle of a fan-out, then started
again empty: every recipient still gets the message, and the few in flight at most twice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.harness import Stack, wait_until
from tests.reliability.faults import (
    RedisServer,
    accepted_per_recipient,
    bulk_directory,
    duplicates,
    fresh_pg,
    issue_unpublished,
    report,
)

pytestmark = pytest.mark.slow
__all__ = ["fresh_pg"]

RECIPIENTS = 1500


def test_redis_down_for_ten_seconds_mid_fan_out(fresh_pg: str, tmp_path: Path) -> None:
    csv_path = tmp_path / "dir.csv"
    bulk_directory(csv_path, RECIPIENTS, "r")
    with RedisServer(tmp_path) as server:
        env = {
            "RELAY_BROKER_URL": server.url,
            "RELAY_REDIS_URL": server.url,
            "RELAY_VISIBILITY_TIMEOUT": "8",
            "RELAY_CLAIM_LEASE": "5",
        }
        with Stack(fresh_pg, tmp_path, sms_rate=300, workers=2, scheduler=True, env=env) as stack:
            stack.import_directory(csv_path)
            alert_id = issue_unpublished(
                stack, template="drill", mode="blast", channels=("sms",), status="Exercise"
            )
            log = stack.sim.log
            wait_until(lambda: len(log.sms_requests()) >= 300, 90, "sending started")
            server.stop()
            stopped = time.monotonic()
            at_stop = len(accepted_per_recipient(log))
            in_flight = stack.states(alert_id).get("sending", 0)
            time.sleep(10)  # the outage itself (a duration, not a synchronisation)
            during = len(accepted_per_recipient(log)) - at_stop
            server.start()
            stack.wait_sent(alert_id, timeout=150)
            recovered = time.monotonic() - stopped
            counts = accepted_per_recipient(log)
            report(
                "redis down 10 s",
                recipients=RECIPIENTS,
                accepted_before_stop=at_stop,
                sent_during_outage=during,
                in_flight_at_stop=in_flight,
                duplicates=duplicates(counts),
                all_sent_after_s=round(recovered, 1),
            )
            assert stack.sim.violations == []
            assert len(counts) == RECIPIENTS  # no recipient missed
            assert duplicates(counts) <= in_flight
            assert stack.states(alert_id) == {"sent": RECIPIENTS} or all(
                s in ("accepted", "sent", "delivered") for s in stack.states(alert_id)
            )
