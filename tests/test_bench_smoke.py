"""The benchmark machinery (ops/bench) still runs: its own stack (a dedicated PostgreSQL database,
the simulator in its fast mode, the relay's HTTP app), the asyncio-only limit, the webhook load
generator and the report. Seconds, not minutes; the benchmarks themselves are `make bench`."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

import pytest

from ops.bench import directory, segments
from ops.bench.report import write_report
from ops.bench.run import Bench, row
from ops.bench.stack import BROKER_PREFIX, Stack
from tests.conftest import _pg_reachable, flush_test_broker


def test_bench_machinery_runs_and_reports(tmp_path: Path) -> None:
    reason = _pg_reachable()
    if reason:
        pytest.skip(reason)
    flush_test_broker()  # skips, saying why, without Redis
    tag = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
    # Never the benchmark's own database or keys: a `make bench` may be running meanwhile.
    stack = Stack(
        tmp_path / "work",
        db_name=f"relay_bench_smoke_{tag}",
        broker_prefix=f"{BROKER_PREFIX}{tag}:",
    )
    bench = Bench(quick=True, workdir=tmp_path / "work", stack=stack)
    try:
        bench.stack.fresh_database()
        bench.stack.start_simulator()
        directory.load(bench.stack.db_url, 50)
        mobiles = "SELECT count(*) FROM contact_paths WHERE line_type = 'mobile'"
        assert bench.sql(mobiles)[0][0] == 50
        # The asyncio-only limit: the relay's own twilio channel, no database, no queue.
        meter = bench.meter()
        limit = bench.limit_with_body(200, "【テスト】金沢区役所からの試験送信です。")
        assert limit["sent"] == 200 and limit["failed"] == 0
        # CPU per process around it (ops/bench/cpu.py): the limit process and the simulator.
        cpu = meter.stop(200, children_as="limit")
        assert cpu["cpu_s"]["limit"] > 0 and cpu["cpu_s"]["simulator"] > 0
        received = [r for r in bench.stack.sim_requests() if r["kind"] == "sms"]
        assert len(received) == 200

        bench.stack.start_web()
        noop = bench._json_process(
            [sys.executable, "-m", "ops.bench.webhook_load"],
            {
                "server": bench.stack.public_url,
                "public_url": bench.stack.public_url,
                "path": "/bench/noop",
                "auth_token": bench.stack.auth_token,
                "account_sid": bench.stack.account_sid,
                "duration": 1.0,
                "concurrency": 4,
                "items": [[1, "SM" + "0" * 32, directory.mobile(0)]],
            },
        )
        assert noop["ok"] > 0 and noop["statuses"] == {"204": noop["ok"]}

        bench.results["s1"] = {
            "title": "smoke",
            "rows": [
                row("limit", round(limit["per_s"]), "", None, "msg/s"),
                row("ratio", 0.5, "≥ 0.7", False),
            ],
            "details": {"limit": limit},
            "reproduce": "python -m ops.bench --only s1",
        }
        info = {
            "date": "today",
            "command": "smoke",
            "mode": "quick",
            "total_seconds": 1,
            "cores": 2,
            "cpu": "x",
            "memory_gb": 1,
            "python": "3.11",
            "kernel": "k",
            "load_average_at_start": [0],
            "load_average_at_end": [0],
        }
        bench.results["segments"] = segments.section()
        write_report(tmp_path / "out", info, bench.results)
        text = (tmp_path / "out" / "RESULTS.md").read_text(encoding="utf-8")
        assert "| s1 | ratio | 0.5 | ≥ 0.7 | MISS |" in text
        assert "## SMS segments per template" in text and "| earthquake | 1 (" in text
        saved = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
        assert saved["scenarios"]["s1"]["details"]["limit"]["sent"] == 200
    finally:
        bench.stack.close()
        bench.stack.drop_database()
