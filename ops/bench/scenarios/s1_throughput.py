"""s1 throughput vs the asyncio-only limit and vs one Celery task per message."""

from __future__ import annotations

import os
import sys
import time

from ops.bench.harness import Bench, row
from ops.bench.stack import FAST, REDIS_URL, Proc, wait_until


def run(bench: Bench) -> dict:
    n, n_percall = bench.size["s1"], bench.size["s1_percall"]
    s = bench.stack
    s.start_workers(FAST)
    bench.warm_up()
    limits = [_limit(bench, n)]
    before = s.sim_count()
    sampler = bench.sample("s1-workers", bench.pool_pids())
    meter = bench.meter()
    t0 = time.perf_counter()
    wall0 = time.time()
    alert_id = bench.issue(f"tag:first{n}", status="Actual")
    planned = time.perf_counter() - t0
    t1 = bench.wait_sent(alert_id, 600)
    relay_cpu = meter.stop(n)
    bench.finish_sample("s1: the 4 worker pool processes while sending", sampler)
    relay_s = t1 - t0
    states = bench.states(alert_id)
    reqs = [r for r in s.sim_requests(before) if r["kind"] == "sms"]
    distinct = len({r["to"] for r in reqs})
    first = min(r["wall"] for r in reqs) - wall0 if reqs else float("nan")
    last = max(r["wall"] for r in reqs) - wall0 if reqs else float("nan")
    limits.append(_limit(bench, n))
    s.stop_workers()
    percall = _percall(bench, n_percall, alert_id)
    limit = max(x["per_s"] for x in limits)
    limit_cpu = max(limits, key=lambda x: x["per_s"])["cpu"]
    relay_rate = n / relay_s
    return {
        "title": f"1. Throughput: {n:,} SMS through the whole pipeline",
        "rows": [
            row("relay, plan → dispatch → send → record", round(relay_rate), "", None, "msg/s"),
            row(
                "limit: one asyncio loop, same client, no DB/queue (best of 2)",
                round(limit),
                "",
                None,
                "msg/s",
            ),
            row(
                f"one Celery task per message, sync client, commit each ({n_percall:,})",
                round(percall["per_s"]),
                "",
                None,
                "msg/s",
            ),
            row(
                "relay / limit",
                round(relay_rate / limit, 3),
                "≥ 0.7",
                relay_rate / limit >= 0.7,
            ),
            row(
                "machine CPU per message (all processes): relay run / limit run",
                f"{relay_cpu['cpu_ms_per_item_total']} / {limit_cpu['cpu_ms_per_item_total']}",
                "",
                None,
                "ms",
            ),
            row(
                "relay / one-task-per-message",
                round(relay_rate / percall["per_s"], 1),
                "≥ 8",
                relay_rate / percall["per_s"] >= 8,
            ),
        ],
        "details": {
            "alert_id": alert_id,
            "relay_seconds": round(relay_s, 2),
            "plan_seconds": round(planned, 2),
            "first_request_after_s": round(first, 2),
            "last_request_after_s": round(last, 2),
            "send_phase_msg_per_s": round(n / (last - first), 1) if last > first else None,
            "states": states,
            "simulator_requests": len(reqs),
            "distinct_recipients": distinct,
            "limit_runs": limits,
            "percall": percall,
            # Where the CPU went (ops/bench/cpu.py): the relay's run, and the best limit run.
            "cpu_relay": relay_cpu,
            "cpu_limit": limit_cpu,
        },
        "reproduce": f"{bench.command} --only s1",
    }


def _limit(bench: Bench, n: int) -> dict:
    """The limit for the SMS the relay just planned (the same rendered body)."""
    last_sms = "SELECT body FROM deliveries WHERE channel = 'sms' ORDER BY id DESC LIMIT 1"
    body = bench.sql(last_sms)[0][0]
    meter = bench.meter()
    result = bench.limit_with_body(n, str(body))
    result["cpu"] = meter.stop(n, children_as="limit process (one asyncio loop)")
    return result


def _percall(bench: Bench, n: int, alert_id: int) -> dict:
    from ops.bench import percall

    s = bench.stack
    bench.sql("DROP TABLE IF EXISTS bench_percall")
    bench.sql(percall.TABLE)
    bench.sql(
        "INSERT INTO bench_percall (to_number, body, callback) "
        "SELECT address, body, :url || id FROM deliveries WHERE alert_id = :a "
        "ORDER BY id LIMIT :n",
        a=alert_id,
        n=n + 1,
        url=f"{s.public_url}/webhooks/twilio/status?d=",
    )
    env = {
        **s.env(),
        "BENCH_PERCALL_DB": s.db_url,
        "BENCH_PERCALL_BROKER": REDIS_URL,
    }
    procs = []
    for i in range(2):
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "ops.bench.percall",
            "-q",
            "worker",
            "--concurrency=2",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        procs.append(Proc(f"percall-{i}", args, env, s.workdir / f"percall-{i}.log"))
    try:
        os.environ["BENCH_PERCALL_BROKER"] = REDIS_URL
        percall.app.conf.broker_url = REDIS_URL
        sent = lambda: int(  # noqa: E731
            bench.sql("SELECT count(*) FROM bench_percall WHERE state = 'sent'")[0][0]
        )
        percall.send_one.delay(1)  # warm-up: the workers are up once it is sent
        wait_until(lambda: sent() == 1, 90, "percall warm-up", 0.1)
        t0 = time.perf_counter()
        for row_id in range(2, n + 2):
            percall.send_one.delay(row_id)
        enqueued = time.perf_counter() - t0
        wait_until(lambda: sent() == n + 1, 600, "percall run", 0.1)
        seconds = time.perf_counter() - t0
    finally:
        for proc in procs:
            proc.stop()
    return {
        "n": n,
        "seconds": round(seconds, 2),
        "enqueue_seconds": round(enqueued, 2),
        "per_s": n / seconds,
    }
