"""s7 one of two workers SIGKILLed mid fan-out with the default settings: recovery time and
duplicates (issue 15).

The production shape with nothing shortened: two `relay worker` processes (2 pool processes
each), `relay scheduler` with its default tick, the default claim lease (60 s) and Redis
visibility timeout (600 s). An SMS alert to 3,000 recipients at the bench's provider rate (no
limit in the way: the most a process can have in flight); once a quarter of it has reached the
simulator, one worker (main process and pool) is SIGKILLed and a new one started at once, as
tests/reliability/test_worker_kills.py does with the same defaults at 150 segments/s.

The simulator sends no status callbacks here, so only what the relay wrote itself keeps a row
from being sent again: the rows the dead worker claimed and never recorded are its unsent
share, sent again once their lease is over (the scheduler's stale-claims job, every 10 s). Of
those, the ones whose request had reached the simulator before the kill are sent twice; the
bound is what its processes can have in flight (docs/GUARANTEES.md).
"""

from __future__ import annotations

import os
import time
from collections import Counter

from ops.bench.harness import Bench, row
from ops.bench.stack import FAST, POOL, wait_until


def run(bench: Bench) -> dict:
    from relay.delivery.sending import Senders

    n = bench.size["s7"]
    s = bench.stack
    shortened = [k for k in ("RELAY_CLAIM_LEASE", "RELAY_VISIBILITY_TIMEOUT") if k in os.environ]
    if shortened:
        raise RuntimeError(f"s7 measures the defaults: unset {', '.join(shortened)}")
    settings = bench.settings()  # this process has the stack's environment: the workers' too
    lease, visibility = settings.claim_lease_s, settings.visibility_timeout_s
    s.start_workers(FAST)
    s.start_scheduler(FAST)
    try:
        # Every pool process has sent before the clock: none is starting up at the kill.
        bench.warm_up(audience=f"tag:first{n}")
        since = s.sim_count()
        alert_id = bench.issue(f"tag:first{n}", status="Actual")
        received = lambda: s.sim_count() - since  # noqa: E731
        # A quarter sent, planning over and its sends published: a kill while the worker plans
        # a slice, or between its commit and the publish, is another case (ANALYSIS.md, s7).
        wait_until(
            lambda: received() >= n // 4 and not _planning(bench, alert_id),
            120,
            "a quarter of the alert sent",
            0.005,
        )
        victim = s.workers[0]
        killed_wall, killed = time.time(), time.perf_counter()
        victim.kill()
        s.workers.remove(victim)
        s.start_worker(FAST)
        at_kill = {"requests_received": received(), **bench.states(alert_id)}
        # The dead worker's unsent share: what is still to send once the live workers have
        # sent all they could (they record their own within a second) — rows it claimed and
        # never recorded (`sending`, back after the lease) and rows of a task it held but had
        # not started (`queued`, its task back after the visibility timeout).
        _settle(bench, alert_id, until=killed + lease / 2)
        dead = {
            int(i): (str(a), str(state))
            for i, a, state in bench.sql(
                "SELECT id, address, state FROM deliveries WHERE alert_id = :a "
                "AND state IN ('queued', 'sending')",
                a=alert_id,
            )
        }
        recorded = bench.wait_sent(alert_id, lease + visibility + 60) - killed
    finally:
        s.stop_scheduler()
    states = bench.states(alert_id)
    addresses = {
        str(a)
        for (a,) in bench.sql("SELECT address FROM deliveries WHERE alert_id = :a", a=alert_id)
    }
    requests = [
        r
        for r in s.sim_requests(since)
        if r["kind"] == "sms" and r["status"] == 201 and r["to"] in addresses
    ]
    per_recipient = Counter(r["to"] for r in requests)
    duplicates = sum(k - 1 for k in per_recipient.values() if k > 1)
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for r in requests:
        first[r["to"]] = min(first.get(r["to"], r["wall"]), r["wall"])
        last[r["to"]] = max(last.get(r["to"], r["wall"]), r["wall"])
    dead_to = {a for a, _ in dead.values()}
    held = Counter(state for _, state in dead.values())
    dead_sent = max((last[a] for a in dead_to if a in last), default=float("nan")) - killed_wall
    everyone = max(first.values(), default=float("nan")) - killed_wall
    bound = POOL * Senders.max_in_flight
    missed = len(addresses - set(per_recipient))
    window = lease + 30  # the lease, one stale-claims interval (10 s), the send: 90 s
    return {
        "title": f"7. A worker SIGKILLed at a quarter of a {n:,}-recipient SMS alert, default "
        f"settings (claim lease {lease:g} s, visibility timeout {visibility} s, scheduler tick "
        "2 s)",
        "rows": [
            row("recipients missed", missed, "0", missed == 0),
            row(
                "kill → the dead worker's unsent share all sent",
                round(dead_sent, 1),
                f"≤ {window:g}",
                dead_sent <= window,
                "s",
            ),
            row("kill → everyone sent at least once", round(everyone, 1), "", None, "s"),
            row(
                "kill → every delivery recorded (none queued or sending)",
                round(recorded, 1),
                "",
                None,
                "s",
            ),
            row(
                "the dead worker's unsent share: claimed, never recorded / in a task not started",
                f"{held['sending']} / {held['queued']}",
                "",
                None,
                "rows",
            ),
            row(
                "duplicates at the simulator",
                duplicates,
                f"≤ {bound} (its {POOL} processes × {Senders.max_in_flight} in flight)",
                duplicates <= bound,
            ),
        ],
        "details": {
            "alert_id": alert_id,
            "recipients": n,
            "claim_lease_s": lease,
            "visibility_timeout_s": visibility,
            "killed_at_requests": at_kill["requests_received"],
            "states_at_kill": at_kill,
            "dead_share_rows": len(dead),
            "dead_share_claimed_not_recorded": held["sending"],
            "dead_share_in_a_task_not_started": held["queued"],
            "dead_share_requested_twice": sum(1 for a in dead_to if per_recipient[a] > 1),
            "dead_share_sent_once_after_recovery": sum(1 for a in dead_to if per_recipient[a] == 1),
            "simulator_requests": len(requests),
            "duplicates": duplicates,
            "bound": bound,
            "states": states,
        },
        "notes": [
            "The recovery time is the claim lease (60 s, counted from the claim, a moment before "
            "the kill) plus up to one interval of the scheduler's stale-claims job (10 s), then "
            "the send itself. The dead worker's Celery tasks stay in Redis's unacked set until "
            "the visibility timeout (600 s) and find nothing left to claim when they come back.",
        ],
        "reproduce": f"{bench.command} --only s7",
    }


def _planning(bench: Bench, alert_id: int) -> bool:
    """Still planning a slice, or a slice's sends not yet published."""
    return bool(
        bench.sql(
            "SELECT (SELECT state = 'dispatching' FROM alerts WHERE id = :a) "
            "OR EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL)",
            a=alert_id,
        )[0][0]
    )


def _settle(bench: Bench, alert_id: int, until: float) -> None:
    """Wait until what is left of the alert has not changed for 3 s (at least 3 s after now),
    or until `until` (perf_counter): before any lease is over, so nothing was recovered yet."""
    last, since = -1, time.perf_counter()
    while time.perf_counter() < until:
        left = bench.pending(alert_id)
        if left != last:
            last, since = left, time.perf_counter()
        elif time.perf_counter() - since >= 3:
            return
        time.sleep(0.1)
