"""s6 webhook ingest (signature + database) vs a no-op endpoint on the same server.

It posts callbacks for s1's sent SMS, so it runs only together with s1."""

from __future__ import annotations

import statistics
import sys

from ops.bench.harness import Bench, row


def run(bench: Bench) -> dict:
    s = bench.stack
    s.stop_workers()  # the HTTP server alone, as in production behind a load balancer
    items = bench.sql(
        "SELECT id, provider_id, address FROM deliveries WHERE provider_id IS NOT NULL "
        "AND channel = 'sms' ORDER BY id LIMIT 20000"
    )
    if not items:
        raise RuntimeError("s6 needs sent SMS deliveries: run s1 first (or all scenarios)")
    events0 = int(bench.sql("SELECT count(*) FROM delivery_events")[0][0])
    job = {
        "server": s.public_url,
        "public_url": s.public_url,
        "auth_token": s.auth_token,
        "account_sid": s.account_sid,
        "duration": bench.size["s6_seconds"],
        "concurrency": 32,
        "items": [[int(i), str(p), str(a)] for i, p, a in items],
    }
    runs: dict[str, list[dict]] = {"noop": [], "status": []}
    for i, path in enumerate(("noop", "status", "noop", "status")):
        url_path = "/bench/noop" if path == "noop" else "/webhooks/twilio/status"
        sampler = bench.sample("s6-web", [s.web.pid]) if s.web and i == 1 else None
        meter = bench.meter()
        result = bench._json_process(
            [sys.executable, "-m", "ops.bench.webhook_load"], {**job, "path": url_path}
        )
        load = "load generator (whole process: signing up front, then posting)"
        result["cpu"] = meter.stop(max(result["ok"], 1), children_as=load)
        bench.finish_sample("s6: the HTTP server during status callbacks", sampler)
        runs[path].append(result)
    events = int(bench.sql("SELECT count(*) FROM delivery_events")[0][0]) - events0
    noop = statistics.mean(r["per_s"] for r in runs["noop"])
    status = statistics.mean(r["per_s"] for r in runs["status"])
    stored = sum(r["ok"] for r in runs["status"])
    return {
        "title": "6. Webhook ingest: signed status callbacks, signature check + database "
        "write, vs a no-op endpoint on the same server (32 concurrent)",
        "rows": [
            row("status callbacks", round(status), "", None, "req/s"),
            row("no-op endpoint", round(noop), "", None, "req/s"),
            row("ratio", round(status / noop, 3), "≥ 0.6", status / noop >= 0.6),
            row(
                "HTTP app CPU per request: status callback / no-op",
                f"{_per_request(runs['status'], 'HTTP app')} / "
                f"{_per_request(runs['noop'], 'HTTP app')}",
                "",
                None,
                "ms",
            ),
            row(
                "machine CPU per request (all processes): status callback / no-op",
                f"{_per_request(runs['status'], None)} / {_per_request(runs['noop'], None)}",
                "",
                None,
                "ms",
            ),
        ],
        "details": {"runs": runs, "events_stored": events, "callbacks_answered_2xx": stored},
        "reproduce": f"{bench.command} --only s6  (needs s1's deliveries: runs s1 first)",
    }


def _per_request(runs: list[dict], part: str | None) -> float:
    """Mean CPU ms per answered request over the runs: of one part of the stack, or of the
    whole machine (None)."""
    per = [
        r["cpu"]["cpu_ms_per_item"][part] if part else r["cpu"]["cpu_ms_per_item_total"]
        for r in runs
    ]
    return round(statistics.mean(per), 3)
