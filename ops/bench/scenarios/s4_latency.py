"""s4 latency of a one-recipient real alert, idle and behind a large exercise."""

from __future__ import annotations

import json
import time
import urllib.request

from ops.bench import directory
from ops.bench.harness import EARTHQUAKE, Bench, pct, row
from ops.bench.stack import FAST, wait_until


def run(bench: Bench) -> dict:
    from relay.accounts.users import create_user
    from relay.db import transaction

    s = bench.stack
    s.start_workers(FAST)
    with transaction(s.db_url) as session:
        _, token = create_user(session, f"bench-{time.time_ns()}", "operator", "bench")
    bench.warm_up()
    api_idle: list[float] = []  # the API's own share of each idle latency
    pids = [s.web.pid] if s.web else []
    sampler = bench.sample("s4-idle", pids + [w.pid for w in s.workers] + bench.pool_pids())
    idle = [_latency(bench, token, 100 + i, api_idle) for i in range(bench.size["s4_idle"])]
    bench.finish_sample("s4: HTTP server and workers (main and pool) during idle alerts", sampler)
    api_loaded: list[float] = []  # and of each latency behind the exercise
    n_ex = bench.size["s4_exercise"]
    exercise = bench.issue(f"tag:first{n_ex}", status="Exercise")
    wait_until(lambda: bench.pending(exercise) < n_ex, 60, "exercise started", 0.05)
    loaded: list[float] = []
    i = 0
    while len(loaded) < bench.size["s4_loaded"] and bench.pending(exercise) > 0:
        latency = _latency(bench, token, 1000 + i, api_loaded)
        i += 1
        if bench.pending(exercise) > 0:  # only samples taken while it was still sending
            loaded.append(latency)
    bench.wait_sent(exercise, 600)
    api_rss = s.web.peak_rss() if s.web else {}
    return {
        "title": "4. Latency: API call issuing a one-recipient real alert → first request "
        "at the simulator",
        "rows": [
            row(
                f"idle, p50 ({len(idle)} alerts)",
                round(pct(idle, 0.5) * 1000),
                "≤ 100",
                pct(idle, 0.5) <= 0.1,
                "ms",
            ),
            row(
                "idle, p99",
                round(pct(idle, 0.99) * 1000),
                "≤ 300",
                pct(idle, 0.99) <= 0.3,
                "ms",
            ),
            row(
                f"during a {n_ex:,}-recipient exercise, p50 ({len(loaded)} alerts)",
                round(pct(loaded, 0.5) * 1000) if loaded else "no sample",
                "≤ 300",
                bool(loaded) and pct(loaded, 0.5) <= 0.3,
                "ms",
            ),
        ],
        "details": {
            "idle_ms": [round(x * 1000, 1) for x in idle],
            "loaded_ms": [round(x * 1000, 1) for x in loaded],
            "loaded_p99_ms": round(pct(loaded, 0.99) * 1000) if loaded else None,
            "api_response_idle_p50_ms": round(pct(api_idle, 0.5) * 1000, 1),
            "api_response_loaded_p50_ms": round(pct(api_loaded, 0.5) * 1000, 1),
            "api_process_peak_rss_mb": api_rss,
        },
        "reproduce": f"{bench.command} --only s4",
    }


def _latency(bench: Bench, token: str, i: int, api_seconds: list[float]) -> float:
    s = bench.stack
    code, number = f"bench-{i:06d}", directory.mobile(i)
    since = s.sim_count()
    body = json.dumps(
        {
            "template": "earthquake",
            "audience": f"org:{code}",
            "variables": EARTHQUAKE,
            "channels": ["sms"],
            "mode": "blast",
        }
    )
    req = urllib.request.Request(  # noqa: S310  (our own http:// URL)
        s.public_url + "/api/v1/alerts",
        data=body.encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    t0 = time.time()
    with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310
        assert response.status == 201, response.status
    api_seconds.append(time.time() - t0)  # the API's own share of the latency

    def arrived() -> float | None:
        for r in s.sim_get(f"/_sim/log?since={since}&kind=sms"):
            if r["to"] == number:
                return float(r["wall"])
        return None

    return float(wait_until(arrived, 30, f"alert to {code}", 0.002)) - t0
