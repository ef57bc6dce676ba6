"""s2 a provider limit (SMS 50 segments/s) honoured and saturated by two workers."""

from __future__ import annotations

import time

from ops.bench.harness import Bench, row
from ops.bench.stack import FAST


def run(bench: Bench) -> dict:
    from relay.delivery.runtime import burst_for
    from simulator.log import window_max

    n, rate = bench.size["s2"], 50.0
    s = bench.stack
    s.start_workers({**FAST, "sms": rate})
    bench.warm_up("bench-000001")
    before = s.sim_count()
    wall0 = time.time()
    alert_id = bench.issue(f"tag:first{n}", template="drill", status="Exercise")
    bench.wait_sent(alert_id, 900)
    reqs = sorted(
        (r for r in s.sim_requests(before) if r["kind"] == "sms"), key=lambda r: r["wall"]
    )
    segments = sum(r["segments"] for r in reqs)
    seg_kinds = sorted({r["segments"] for r in reqs})
    burst = burst_for(rate)
    worst = window_max(((r["wall"], r["segments"]) for r in reqs), 1.0)
    t_first, t_last = reqs[0]["wall"], reqs[-1]["wall"]
    after_first_second = sum(r["segments"] for r in reqs if r["wall"] >= t_first + 1.0)
    steady = after_first_second / (t_last - t_first - 1.0)
    completion = t_last - wall0
    ideal = (segments - burst) / rate
    return {
        "title": f"2. Provider limit: SMS {rate:g} segments/s shared by 2 workers, "
        f"{len(reqs):,} messages of {'/'.join(map(str, seg_kinds))} segments",
        "rows": [
            row(
                "worst 1-second window at the simulator",
                worst,
                f"≤ {rate:g} + burst {burst} = {rate + burst:g}",
                worst <= rate + burst,
                "segments",
            ),
            row(
                "steady rate (after the first second) / limit",
                round(steady / rate, 3),
                "≥ 0.97",
                steady / rate >= 0.97,
            ),
            row(
                "completion (issue → last request) / ideal",
                round(completion / ideal, 3),
                "≤ 1.03",
                completion / ideal <= 1.03,
            ),
        ],
        "details": {
            "messages": len(reqs),
            "segments": segments,
            "burst": burst,
            "steady_segments_per_s": round(steady, 2),
            "completion_s": round(completion, 2),
            "ideal_s": round(ideal, 2),
            "send_phase_s": round(t_last - t_first, 2),
            "first_request_after_s": round(t_first - wall0, 2),
            "ideal_definition": "(segments - burst) / rate: a full bucket, then the rate",
            "states": bench.states(alert_id),
            "planned_messages": n,
        },
        "reproduce": f"{bench.command} --only s2",
    }
