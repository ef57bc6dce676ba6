"""`make bench` / `python -m ops.bench [--quick] [--only s1,s4]`: the six scenarios of issue 8.

Production shape: PostgreSQL (database `relay_bench`, recreated per run), Redis (db 13, key
prefix `relay-bench:`), two `relay worker` processes (prefork, 2 each), `relay serve`'s app,
and the carrier simulator on loopback in its fastest mode (no callbacks, no validation).
The machine is shared, so each figure that matters is a ratio against a reference measured in
the same run. Writes ops/bench/RESULTS.md and ops/bench/results.json.

  s1 throughput vs the asyncio-only limit and vs one Celery task per message
  s2 a provider limit (SMS 50 segments/s) honoured and saturated by two workers
  s3 the ward drill at Twilio's default limits vs the theoretical minimum
  s4 latency of a one-recipient real alert, idle and behind a large exercise
  s5 planning and dispatch at 10,000 / 50,000 / 100,000 recipients: time, memory, rows
  s6 webhook ingest (signature + database) vs a no-op endpoint on the same server
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ops.bench import directory
from ops.bench.pyspy import Sampler
from ops.bench.report import write_report
from ops.bench.stack import (
    FAST,
    REDIS_URL,
    ROOT,
    TWILIO_DEFAULTS,
    Stack,
    children,
    machine,
    peak_rss_mb,
    wait_until,
)

HERE = Path(__file__).resolve().parent
SCENARIOS = ("s3", "s1", "s4", "s6", "s2", "s5")  # s3 first: it uses the sample directory
EARTHQUAKE = {"intensity": "5強", "area": "金沢区全域"}

FULL = {
    "s1": 20_000,
    "s1_limit": 20_000,
    "s1_percall": 5_000,
    "s2": 3_000,
    "s3_audience": "all",
    "s4_idle": 100,
    "s4_loaded": 30,
    "s4_exercise": 20_000,
    "s5": (10_000, 50_000, 100_000),
    "s6_seconds": 8.0,
}
QUICK = {
    "s1": 2_000,
    "s1_limit": 2_000,
    "s1_percall": 400,
    "s2": 300,
    "s3_audience": "district:西柴",
    "s4_idle": 10,
    "s4_loaded": 5,
    "s4_exercise": 4_000,
    "s5": (500, 2_000),
    "s6_seconds": 2.0,
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def row(figure: str, value: float | str, target: str, ok: bool | None, unit: str = "") -> dict:
    verdict = "—" if ok is None else ("PASS" if ok else "MISS")
    return {"figure": figure, "value": value, "unit": unit, "target": target, "verdict": verdict}


class Bench:
    def __init__(
        self, quick: bool, workdir: Path, stack: Stack | None = None, profile: bool = False
    ) -> None:
        self.quick = quick
        self.profile = profile
        self.profiles: dict[str, str] = {}
        self.size = QUICK if quick else FULL
        self.stack = stack or Stack(workdir)
        self.results: dict[str, Any] = {}
        self.command = "python -m ops.bench" + (" --quick" if quick else "")

    # --- set-up -------------------------------------------------------------------------------
    def start(self) -> None:
        s = self.stack
        s.fresh_database()
        s.clear_redis()
        s.start_simulator()
        # This process issues alerts like the CLI does: same settings as the other processes.
        os.environ.update(s.env())
        from relay.delivery.runtime import reset_runtime

        reset_runtime()
        import workers.tasks  # noqa: F401  (registers the outbox publisher, reads the broker)

        s.start_web()

    def settings(self):  # type: ignore[no-untyped-def]
        from relay.config import load_settings

        return load_settings()

    def sql(self, query: str, **params: Any) -> Any:
        from sqlalchemy import text

        from relay.db import engine_for

        with engine_for(self.stack.db_url).begin() as conn:
            result = conn.execute(text(query), params)
            return result.all() if result.returns_rows else []

    def issue(
        self,
        audience: str,
        *,
        template: str = "earthquake",
        status: str = "Actual",
        channels: tuple[str, ...] = ("sms",),
        mode: str = "blast",
        variables: dict[str, str] | None = None,
    ) -> int:
        """Issue as `relay alert issue` does: plan in one transaction, then publish."""
        from relay.alerts.issuing import IssueRequest, issue_alert
        from relay.db import transaction
        from relay.delivery.runtime import get_runtime
        from relay.directory.audience import parse_audience

        request = IssueRequest(
            template=template,
            audience=parse_audience(audience),
            variables=EARTHQUAKE if variables is None and template == "earthquake" else {},
            channels=channels,
            mode=mode,
            status=status,
            issued_by="bench",
        )
        settings = self.settings()
        with transaction(settings.database_url) as session:
            alert_id = issue_alert(session, settings, request).id
        get_runtime().publish_outbox()
        return int(alert_id)

    def pending(self, alert_id: int) -> int:
        return int(
            self.sql(
                "SELECT count(*) FROM deliveries WHERE alert_id = :a "
                "AND state IN ('queued', 'sending')",
                a=alert_id,
            )[0][0]
        )

    def wait_sent(self, alert_id: int, timeout: float) -> float:
        """Until nothing of the alert waits to be sent; returns perf_counter() then."""
        wait_until(lambda: self.pending(alert_id) == 0, timeout, f"alert {alert_id}", 0.05)
        return time.perf_counter()

    def states(self, alert_id: int) -> dict[str, int]:
        rows = self.sql(
            "SELECT state, count(*) FROM deliveries WHERE alert_id = :a GROUP BY state", a=alert_id
        )
        return {state: int(n) for state, n in rows}

    def warm_up(self, org: str = "bench-000000") -> None:
        """One alert through the workers, so a measurement never includes their start-up."""
        alert_id = self.issue(f"org:{org}", status="Test", template="test")
        self.wait_sent(alert_id, 90)

    def sample(self, name: str, pids: list[int]) -> Sampler | None:
        """py-spy on these processes until .stop(), when --profile is on."""
        if not self.profile:
            return None
        out = self.stack.workdir / "profiles" / name
        out.parent.mkdir(parents=True, exist_ok=True)
        return Sampler(pids, out)

    def finish_sample(self, name: str, sampler: Sampler | None) -> None:
        if sampler is not None:
            self.profiles[name] = sampler.stop()

    def pool_pids(self) -> list[int]:
        return [pid for w in self.stack.workers for pid in children(w.pid)]

    # --- s1 -----------------------------------------------------------------------------------
    def s1(self) -> dict:
        n, n_percall = self.size["s1"], self.size["s1_percall"]
        s = self.stack
        s.start_workers(FAST)
        self.warm_up()
        limits = [self.limit(n)]
        before = s.sim_count()
        t0 = time.perf_counter()
        wall0 = time.time()
        sampler = self.sample("s1-workers", self.pool_pids())
        alert_id = self.issue(f"tag:first{n}", status="Actual")
        planned = time.perf_counter() - t0
        t1 = self.wait_sent(alert_id, 600)
        self.finish_sample("s1: the 4 worker pool processes while sending", sampler)
        relay_s = t1 - t0
        states = self.states(alert_id)
        reqs = [r for r in s.sim_requests(before) if r["kind"] == "sms"]
        distinct = len({r["to"] for r in reqs})
        first = min(r["wall"] for r in reqs) - wall0 if reqs else float("nan")
        last = max(r["wall"] for r in reqs) - wall0 if reqs else float("nan")
        limits.append(self.limit(n))
        s.stop_workers()
        percall = self.percall(n_percall, alert_id)
        limit = max(x["per_s"] for x in limits)
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
            },
            "reproduce": f"{self.command} --only s1",
        }

    def limit(self, n: int) -> dict:
        """The limit for the SMS the relay just planned (the same rendered body)."""
        body = self.sql(
            "SELECT body FROM deliveries WHERE channel = 'sms' ORDER BY id DESC LIMIT 1"
        )[0][0]
        return self.limit_with_body(n, str(body))

    def limit_with_body(self, n: int, body: str) -> dict:
        s = self.stack
        numbers = [directory.mobile(i) for i in range(n)]
        job = {
            "api_url": s.sim_url,
            "account_sid": s.account_sid,
            "auth_token": s.auth_token,
            "from": "+815000000000",
            "messages": [
                [to, body, f"{s.public_url}/webhooks/twilio/status?d={i + 1}"]
                for i, to in enumerate(numbers)
            ],
        }
        return self._json_process([sys.executable, "-m", "ops.bench.limit"], job)

    def _json_process(self, args: list[str], job: dict) -> dict:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump(job, fh)
        try:
            out = subprocess.run(
                [*args, fh.name],
                env=self.stack.env(),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=600,
                check=True,
            ).stdout
        finally:
            os.unlink(fh.name)
        return dict(json.loads(out.strip().splitlines()[-1]))

    def percall(self, n: int, alert_id: int) -> dict:
        from ops.bench import percall

        s = self.stack
        self.sql("DROP TABLE IF EXISTS bench_percall")
        self.sql(percall.TABLE)
        self.sql(
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
        from ops.bench.stack import Proc

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
                self.sql("SELECT count(*) FROM bench_percall WHERE state = 'sent'")[0][0]
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

    # --- s2 -----------------------------------------------------------------------------------
    def s2(self) -> dict:
        from relay.delivery.runtime import burst_for
        from simulator.log import window_max

        n, rate = self.size["s2"], 50.0
        s = self.stack
        s.start_workers({**FAST, "sms": rate})
        self.warm_up("bench-000001")
        before = s.sim_count()
        wall0 = time.time()
        alert_id = self.issue(f"tag:first{n}", template="drill", status="Exercise")
        self.wait_sent(alert_id, 900)
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
                "states": self.states(alert_id),
                "planned_messages": n,
            },
            "reproduce": f"{self.command} --only s2",
        }

    # --- s3 -----------------------------------------------------------------------------------
    def s3(self) -> dict:
        from relay.db import transaction
        from relay.delivery.runtime import burst_for
        from relay.directory.csv_format import parse_directory
        from relay.directory.store import apply_directory

        s = self.stack
        s.truncate()
        sample = ROOT / "ops" / "sample" / "kanazawa-directory.csv"
        with transaction(s.db_url) as session:
            apply_directory(session, parse_directory(sample.read_bytes()), actor="bench")
        s.start_workers(TWILIO_DEFAULTS)
        # An organization with a mobile: the warm-up goes by SMS.
        self.warm_up(
            self.sql(
                "SELECT o.code FROM organizations o JOIN contacts c ON c.organization_id = o.id "
                "JOIN contact_paths p ON p.contact_id = c.id WHERE p.kind = 'mobile' "
                "AND p.line_type = 'mobile' ORDER BY o.code LIMIT 1"
            )[0][0]
        )
        # The warm-up spent tokens: let every bucket fill up again before the clock starts.
        time.sleep(1.0)
        before = s.sim_count()
        wall0 = time.time()
        audience = self.size["s3_audience"]
        alert_id = self.issue(
            audience,
            template="drill",
            status="Exercise",
            channels=("sms", "voice", "email"),
            mode="cascade",
        )
        queued = self.sql(
            "SELECT channel, count(*), sum(segments) FROM deliveries WHERE alert_id = :a "
            "AND state = 'queued' GROUP BY channel",
            a=alert_id,
        )
        self.wait_sent(alert_id, 900)
        reqs = s.sim_requests(before)
        by_kind = {"sms": "sms", "call": "voice", "email": "email"}
        weights: dict[str, int] = {}
        last: dict[str, float] = {}
        for r in reqs:
            ch = by_kind[r["kind"]]
            weights[ch] = weights.get(ch, 0) + (r["segments"] if ch == "sms" else 1)
            last[ch] = max(last.get(ch, 0.0), r["wall"] - wall0)
        theory = {
            ch: max(0.0, (w - burst_for(TWILIO_DEFAULTS[ch])) / TWILIO_DEFAULTS[ch])
            for ch, w in weights.items()
        }
        minimum = max(theory.values())
        took = max(last.values())
        return {
            "title": f"3. Ward drill at Twilio's default limits (SMS 10 seg/s, voice 1/s, "
            f"email 14/s), audience `{audience}`, cascade",
            "rows": [
                row("issue → every first attempt at the provider", round(took, 1), "", None, "s"),
                row("theoretical minimum for those limits", round(minimum, 1), "", None, "s"),
                row("ratio", round(took / minimum, 3), "≤ 1.05", took / minimum <= 1.05),
            ],
            "details": {
                "first_attempts": {ch: [int(n), int(seg or 0)] for ch, n, seg in queued},
                "weights_at_provider": weights,
                "per_channel_last_s": {k: round(v, 2) for k, v in last.items()},
                "per_channel_minimum_s": {k: round(v, 2) for k, v in theory.items()},
                "states": self.states(alert_id),
            },
            "reproduce": f"{self.command} --only s3",
        }

    # --- s4 -----------------------------------------------------------------------------------
    def s4(self) -> dict:
        from relay.accounts.users import create_user
        from relay.db import transaction

        s = self.stack
        s.start_workers(FAST)
        with transaction(s.db_url) as session:
            _, token = create_user(session, f"bench-{time.time_ns()}", "operator", "bench")
        self.warm_up()
        self._api_seconds: list[float] = []
        pids = [s.web.pid] if s.web else []
        sampler = self.sample("s4-idle", pids + [w.pid for w in s.workers] + self.pool_pids())
        idle = [self.latency(token, 100 + i) for i in range(self.size["s4_idle"])]
        self.finish_sample(
            "s4: HTTP server and workers (main and pool) during idle alerts", sampler
        )
        api_idle, self._api_seconds = self._api_seconds, []
        n_ex = self.size["s4_exercise"]
        exercise = self.issue(f"tag:first{n_ex}", status="Exercise")
        wait_until(lambda: self.pending(exercise) < n_ex, 60, "exercise started", 0.05)
        loaded: list[float] = []
        i = 0
        while len(loaded) < self.size["s4_loaded"] and self.pending(exercise) > 0:
            latency = self.latency(token, 1000 + i)
            i += 1
            if self.pending(exercise) > 0:  # only samples taken while it was still sending
                loaded.append(latency)
        self.wait_sent(exercise, 600)
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
                "api_response_loaded_p50_ms": round(pct(self._api_seconds, 0.5) * 1000, 1),
                "api_process_peak_rss_mb": api_rss,
            },
            "reproduce": f"{self.command} --only s4",
        }

    def latency(self, token: str, i: int) -> float:
        s = self.stack
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
        self._api_seconds.append(time.time() - t0)  # the API's own share of the latency

        def arrived() -> float | None:
            for r in s.sim_get(f"/_sim/log?since={since}&kind=sms"):
                if r["to"] == number:
                    return float(r["wall"])
            return None

        return float(wait_until(arrived, 30, f"alert to {code}", 0.002)) - t0

    # --- s5 -----------------------------------------------------------------------------------
    def s5(self) -> dict:
        s = self.stack
        s.start_workers(FAST)
        self.warm_up()
        relay = [sys.executable, "-c", "from relay.cli import main; main()"]
        # What every CLI run costs before it plans anything: start, imports, settings, a query.
        base = self.cli([*relay, "alert", "list", "--limit", "1", "--json"])
        one = self.cli_issue("org:bench-000000")  # the fixed cost of an issue (shows in s4)
        self.wait_sent(one["alert_id"], 60)
        runs = []
        peaks: list[float] = []
        for n in self.size["s5"]:
            # Fresh workers per size: their peak RSS is this size's, and stopping them (below)
            # makes PostgreSQL publish their row counters at once.
            s.stop_workers()
            s.start_workers(FAST)
            stats0 = self.table_stats()
            run = self.cli_issue(f"tag:first{n}")
            run["recipients"] = n
            if run.get("alert_id"):
                alert_id = run["alert_id"]
                t0 = time.perf_counter()
                wait_until(lambda: self.dispatched(alert_id), 600, "dispatch", 0.05)  # noqa: B023
                run["dispatch_s"] = round(time.perf_counter() - t0, 2)
                run["send_s"] = round(self.wait_sent(alert_id, 900) - t0, 2)
                run["plan_s"] = round(run["wall_s"] - base["wall_s"], 2)
                run["plan_ms_per_recipient"] = round(run["plan_s"] / n * 1000, 3)
                deliveries = sum(self.states(alert_id).values())
                run["deliveries"] = deliveries
            run["workers_peak_rss_mb"] = s.workers_peak_rss()
            peaks += [mb for w in run["workers_peak_rss_mb"] for mb in w.values()]
            s.stop_workers()
            if run.get("alert_id"):
                written = self.table_writes(stats0)
                run["rows_inserted_per_delivery"] = round(written["inserted"] / deliveries, 3)
                run["rows_updated_per_delivery"] = round(written["updated"] / deliveries, 3)
                run["writes_by_table"] = written["by_table"]
            runs.append(run)
            brief = {k: v for k, v in run.items() if k not in ("writes_by_table",)}
            print(f"  s5 {n}: {json.dumps(brief, ensure_ascii=False)[:300]}", flush=True)
        result = self._s5_rows(runs, max(peaks, default=0.0))
        result["details"]["cli_startup"] = base
        result["details"]["one_recipient_cli"] = one
        return result

    def dispatched(self, alert_id: int) -> bool:
        """The dispatch task has planned every batch and every batch is queued."""
        state = self.sql("SELECT state FROM alerts WHERE id = :a", a=alert_id)[0][0]
        return state != "dispatching" and self.unpublished() == 0

    def _s5_rows(self, runs: list[dict], worker_peak: float) -> dict:
        rows = []
        for run in runs:
            n = run["recipients"]
            if not run.get("alert_id"):
                rows.append(row(f"{n:,}: plan", f"fails: {run.get('error', '?')}", "", False, ""))
                continue
            rows.append(
                row(
                    f"{n:,}: planning time (CLI wall − CLI start-up)",
                    run["plan_s"],
                    "",
                    None,
                    "s",
                )
            )
            rows.append(
                row(
                    f"{n:,}: dispatch (all batches queued) / send all",
                    f"{run['dispatch_s']} / {run['send_s']}",
                    "",
                    None,
                    "s",
                )
            )
            rows.append(
                row(
                    f"{n:,}: peak RSS of the CLI process",
                    round(run["cli_peak_rss_mb"]),
                    "≤ 300",
                    run["cli_peak_rss_mb"] <= 300,
                    "MB",
                )
            )
            rows.append(
                row(
                    f"{n:,}: rows inserted / updated per delivery",
                    f"{run['rows_inserted_per_delivery']} / {run['rows_updated_per_delivery']}",
                    "",
                    None,
                )
            )
        ok = [r for r in runs if r.get("alert_id")]
        if len(ok) >= 2:
            small, large = ok[0], ok[-1]
            ratio = large["plan_ms_per_recipient"] / small["plan_ms_per_recipient"]
            rows.append(
                row(
                    f"time per recipient {large['recipients']:,} / {small['recipients']:,}",
                    round(ratio, 3),
                    "≤ 1.25",
                    ratio <= 1.25,
                )
            )
        rows.append(
            row(
                "peak RSS of any worker process (main or pool), whole scenario",
                round(worker_peak),
                "≤ 300",
                worker_peak <= 300,
                "MB",
            )
        )
        return {
            "title": "5. Scale: plan and dispatch a synthetic large directory (CLI `relay alert "
            "issue`, SMS, blast)",
            "rows": rows,
            "details": {"runs": runs},
            "reproduce": f"{self.command} --only s5",
        }

    def cli_issue(self, audience: str) -> dict:
        """`relay alert issue` as an operator runs it; wall time and the process's own peak RSS."""
        args = [
            sys.executable,
            "-c",
            "from relay.cli import main; main()",
            "alert",
            "issue",
            "--template",
            "earthquake",
            "--var",
            "intensity=5強",
            "--var",
            "area=金沢区全域",
            "--audience",
            audience,
            "--channels",
            "sms",
            "--mode",
            "blast",
            "--exercise",
            "--json",
        ]
        return self.cli(args)

    def cli(self, args: list[str]) -> dict:
        """Run one `relay` command; its wall time, its own peak RSS, its output."""
        with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
            # Files, not pipes: a failing command may print megabytes (SQL in a traceback).
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                args, env=self.stack.env(), cwd=ROOT, stdout=out_f, stderr=err_f
            )
            # The child's own peak RSS is its VmHWM, read until it exits (VmHWM only grows).
            # Not ru_maxrss: Linux carries the RSS of the forked copy of this process over exec.
            peak = 0.0
            while True:
                pid, status = os.waitpid(proc.pid, os.WNOHANG)
                if pid:
                    break
                peak = max(peak, peak_rss_mb(proc.pid) or 0.0)
                time.sleep(0.02)
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            out_f.seek(0)
            err_f.seek(0)
            out = out_f.read().decode(errors="replace")
            err = err_f.read().decode(errors="replace")
        result: dict[str, Any] = {
            "wall_s": round(wall, 2),
            "cli_peak_rss_mb": round(peak, 1),
            "exit": proc.returncode,
        }
        if proc.returncode == 0:
            data = json.loads(out) if out.strip().startswith("{") else {}
            if "id" in data:
                result["alert_id"] = int(data["id"])
        else:
            lines = [ln for ln in err.strip().splitlines() if ln.strip()]
            # The exception's first line: "sqlalchemy.exc.OperationalError: (...) message".
            first = next((ln for ln in lines if re.match(r"^[\w.]+(Error|Exception):", ln)), "")
            result["error"] = (first or (lines[-1] if lines else ""))[:240]
        return result

    def unpublished(self) -> int:
        return int(self.sql("SELECT count(*) FROM outbox WHERE published_at IS NULL")[0][0])

    def table_stats(self) -> dict[str, tuple[int, int]]:
        self._settle_stats()
        return {
            name: (int(ins), int(upd))
            for name, ins, upd in self.sql(
                "SELECT relname, n_tup_ins, n_tup_upd FROM pg_stat_user_tables"
            )
        }

    def _settle_stats(self) -> None:
        """PostgreSQL publishes other sessions' counters within about a second: wait until
        two reads agree."""
        q = "SELECT sum(n_tup_ins + n_tup_upd) FROM pg_stat_user_tables"
        prev = None

        def stable() -> bool:
            nonlocal prev
            value = self.sql(q)[0][0]
            same, prev = value == prev, value
            return same

        wait_until(stable, 30, "pg_stat settles", 1.1)

    def table_writes(self, before: dict[str, tuple[int, int]]) -> dict:
        after = self.table_stats()
        by_table = {}
        for name, (ins, upd) in after.items():
            b_ins, b_upd = before.get(name, (0, 0))
            if ins - b_ins or upd - b_upd:
                by_table[name] = {"inserted": ins - b_ins, "updated": upd - b_upd}
        return {
            "inserted": sum(v["inserted"] for v in by_table.values()),
            "updated": sum(v["updated"] for v in by_table.values()),
            "by_table": by_table,
        }

    # --- s6 -----------------------------------------------------------------------------------
    def s6(self) -> dict:
        s = self.stack
        s.stop_workers()  # the HTTP server alone, as in production behind a load balancer
        items = self.sql(
            "SELECT id, provider_id, address FROM deliveries WHERE provider_id IS NOT NULL "
            "AND channel = 'sms' ORDER BY id LIMIT 20000"
        )
        if not items:
            raise RuntimeError("s6 needs sent SMS deliveries: run s1 first (or all scenarios)")
        events0 = int(self.sql("SELECT count(*) FROM delivery_events")[0][0])
        job = {
            "server": s.public_url,
            "public_url": s.public_url,
            "auth_token": s.auth_token,
            "account_sid": s.account_sid,
            "duration": self.size["s6_seconds"],
            "concurrency": 32,
            "items": [[int(i), str(p), str(a)] for i, p, a in items],
        }
        runs: dict[str, list[dict]] = {"noop": [], "status": []}
        for i, path in enumerate(("noop", "status", "noop", "status")):
            url_path = "/bench/noop" if path == "noop" else "/webhooks/twilio/status"
            sampler = self.sample("s6-web", [s.web.pid]) if s.web and i == 1 else None
            result = self._json_process(
                [sys.executable, "-m", "ops.bench.webhook_load"], {**job, "path": url_path}
            )
            self.finish_sample("s6: the HTTP server during status callbacks", sampler)
            runs[path].append(result)
        events = int(self.sql("SELECT count(*) FROM delivery_events")[0][0]) - events0
        noop = statistics.mean(r["per_s"] for r in runs["noop"])
        status = statistics.mean(r["per_s"] for r in runs["status"])
        stored = sum(r["ok"] for r in runs["status"])
        return {
            "title": "6. Webhook ingest: signed status callbacks, signature check + database "
            "write, vs a no-op endpoint on the same server (32 concurrent)",
            "rows": [
                row("status callbacks", round(status), "", None, "req/s"),
                row("no-op endpoint", round(noop), "", None, "req/s"),
                row("ratio", round(status / noop, 3), "≥ 0.5", status / noop >= 0.5),
            ],
            "details": {"runs": runs, "events_stored": events, "callbacks_answered_2xx": stored},
            "reproduce": f"{self.command} --only s6  (needs s1's deliveries: runs s1 first)",
        }

    # --- main ----------------------------------------------------------------------------------
    def run(self, only: list[str]) -> None:
        self.start()
        # The city-sized directory (the largest of s1, s2, s4) first; it grows to the scale
        # scenario's size only before s5, so the other figures are on a city, not 100,000.
        city = max(self.size["s1"], self.size["s2"], self.size["s4_exercise"])
        largest = max(city, *self.size["s5"])
        tags = {
            f"first{n}": n
            for n in {self.size["s1"], self.size["s2"], self.size["s4_exercise"], *self.size["s5"]}
        }
        loaded = 0
        for key in SCENARIOS:
            if key not in only:
                continue
            want = 0 if key == "s3" else largest if key == "s5" else city
            if want > loaded:
                seconds = directory.load(self.stack.db_url, want, tags=tags, start=loaded)
                print(f"  directory: {loaded:,} → {want:,} synthetic contacts in {seconds:.1f}s")
                loaded = want
            if key == "s6" and "s1" not in only:
                continue
            print(f"{key} ...", flush=True)
            started = time.perf_counter()
            try:
                self.results[key] = getattr(self, key)()
            except Exception as exc:
                traceback.print_exc()
                self.results[key] = {
                    "title": key,
                    "rows": [row("error", f"{type(exc).__name__}: {exc}"[:300], "", False)],
                    "details": {},
                    "reproduce": f"{self.command} --only {key}",
                }
            self.results[key]["seconds"] = round(time.perf_counter() - started, 1)
            if key == "s3":
                self.stack.truncate()  # the sample directory goes; the synthetic one comes
            print(f"{key} done in {self.results[key]['seconds']}s", flush=True)
            for r in self.results[key]["rows"]:
                print(f"   {r['figure']}: {r['value']} {r['unit']} {r['target']} {r['verdict']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under 3 minutes")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="e.g. s1,s6")
    parser.add_argument(
        "--out",
        type=Path,
        help="where RESULTS.md/results.json go (default: ops/bench, or var/bench/quick with "
        "--quick, so a quick run never replaces the full results)",
    )
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy on workers and server (s1, s4, s6)"
    )
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = ROOT / "var" / "bench" / "quick" if args.quick else HERE
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from s1..s6")
    info = {**machine(), "date": datetime.now(UTC).isoformat(timespec="seconds")}
    bench = Bench(args.quick, args.workdir, profile=args.profile)
    started = time.perf_counter()
    try:
        bench.run(only)
    finally:
        bench.stack.close()
    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    info["total_seconds"] = round(time.perf_counter() - started, 1)
    info["mode"] = "quick" if args.quick else "full"
    info["command"] = bench.command + ("" if only == list(SCENARIOS) else f" --only {args.only}")
    if bench.profiles:
        info["profiles"] = bench.profiles
    write_report(args.out, info, bench.results)
    print(f"wrote {args.out / 'RESULTS.md'} and results.json in {info['total_seconds']}s")
    return 0
