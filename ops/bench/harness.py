"""The harness every scenario shares: the sizes, the stack's set-up, issuing an alert as the
CLI does, waiting for it to be sent, SQL, warm-up, py-spy sampling and the asyncio-only limit.
The scenarios themselves are in ops/bench/scenarios; run.py runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ops.bench import directory
from ops.bench.cpu import Meter
from ops.bench.pyspy import Sampler
from ops.bench.stack import REDIS_URL, ROOT, Stack, children, wait_until

EARTHQUAKE = {"intensity": "5強", "area": "金沢区全域"}

FULL = {
    "s1": 20_000,
    "s1_percall": 5_000,
    "s2": 3_000,
    "s3_audience": "all",
    "s4_idle": 100,
    "s4_loaded": 30,
    "s4_exercise": 20_000,
    "s5": (10_000, 20_000, 50_000, 100_000),
    "s6_seconds": 8.0,
    "s7": 3_000,
    "s8": 20,
}
QUICK = {
    "s1": 2_000,
    "s1_percall": 400,
    "s2": 300,
    "s3_audience": "district:西柴",
    "s4_idle": 10,
    "s4_loaded": 5,
    "s4_exercise": 4_000,
    "s5": (500, 2_000),
    "s6_seconds": 2.0,
    "s7": 1_000,
    "s8": 5,
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
        """Deliveries still to send, plus one while the alert is still being planned (its
        later slices have no deliveries yet)."""
        return int(
            self.sql(
                "SELECT count(*) FROM deliveries WHERE alert_id = :a "
                "AND state IN ('queued', 'sending')",
                a=alert_id,
            )[0][0]
        ) + int(
            self.sql(
                "SELECT count(*) FROM alerts WHERE id = :a AND state = 'dispatching'", a=alert_id
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

    def warm_up(self, org: str = "bench-000000", audience: str | None = None) -> None:
        """One test alert through the workers, so a measurement never includes their start-up;
        to `org`, or to `audience` (one of several batches warms every pool process)."""
        alert_id = self.issue(audience or f"org:{org}", status="Test", template="test")
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

    def meter(self) -> Meter:
        """CPU per process of the stack (ops/bench/cpu.py), started."""
        s = self.stack
        return Meter(
            {
                "simulator": lambda: [s.sim.pid] if s.sim else [],
                "workers: pool processes": self.pool_pids,
                "workers: main processes": lambda: [w.pid for w in s.workers],
                "HTTP app": lambda: [s.web.pid] if s.web else [],
                "PostgreSQL: the bench database's backends, WAL writer": self._pg_pids,
                "Redis server (shared)": _redis_pid,
                "bench harness (this process: issuing, polling)": lambda: [os.getpid()],
            }
        ).start()

    def _pg_pids(self) -> list[int]:
        return [
            int(pid)
            for (pid,) in self.sql(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() OR backend_type = 'walwriter'"
            )
        ]

    # --- measuring processes: the asyncio-only limit, the webhook load ------------------------
    def limit_with_body(self, n: int, body: str) -> dict:
        """The asyncio-only limit (ops/bench/limit.py) for n SMS of this body: s1's reference,
        and what tests/test_bench_smoke.py runs to check the machinery."""
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
        """Run a measuring process (limit.py, webhook_load.py) on a JSON job file; its last
        output line is its JSON result."""
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


def _redis_pid() -> list[int]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return [int(client.info("server")["process_id"])]
    finally:
        client.close()
