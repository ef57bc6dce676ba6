"""s5 planning and dispatch at 10,000 / 50,000 / 100,000 recipients: time, memory, rows."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any

from ops.bench.harness import Bench, row
from ops.bench.stack import FAST, ROOT, peak_rss_mb, wait_until


def run(bench: Bench) -> dict:
    s = bench.stack
    s.start_workers(FAST)
    bench.warm_up()
    relay = [sys.executable, "-c", "from relay.cli import main; main()"]
    # What every CLI run costs before it plans anything: start, imports, settings, a query.
    base = _cli(bench, [*relay, "alert", "list", "--limit", "1", "--json"])
    one = _cli_issue(bench, "org:bench-000000")  # the fixed cost of an issue (shows in s4)
    bench.wait_sent(one["alert_id"], 60)
    runs = []
    peaks: list[float] = []
    for n in bench.size["s5"]:
        # Fresh workers per size: their peak RSS is this size's, and stopping them (below)
        # makes PostgreSQL publish their row counters at once.
        s.stop_workers()
        s.start_workers(FAST)
        stats0 = _table_stats(bench)
        before = s.sim_count()
        run = _cli_issue(bench, f"tag:first{n}")
        run["recipients"] = n
        if run.get("alert_id"):
            alert_id = run["alert_id"]
            t0 = time.perf_counter()
            wait_until(lambda: _dispatched(bench, alert_id), 600, "dispatch", 0.05)  # noqa: B023
            run["dispatch_s"] = round(time.perf_counter() - t0, 2)
            run["send_s"] = round(bench.wait_sent(alert_id, 900) - t0, 2)
            run["plan_s"] = round(run["wall_s"] - base["wall_s"], 2)
            run["plan_ms_per_recipient"] = round(run["plan_s"] / n * 1000, 3)
            deliveries = sum(bench.states(alert_id).values())
            run["deliveries"] = deliveries
            run["first_request_after_issue_s"] = _first_request_after_issue(bench, alert_id, before)
        run["workers_peak_rss_mb"] = s.workers_peak_rss()
        peaks += [mb for w in run["workers_peak_rss_mb"] for mb in w.values()]
        s.stop_workers()
        if run.get("alert_id"):
            written = _table_writes(bench, stats0)
            run["rows_inserted_per_delivery"] = round(written["inserted"] / deliveries, 3)
            run["rows_updated_per_delivery"] = round(written["updated"] / deliveries, 3)
            run["writes_by_table"] = written["by_table"]
        runs.append(run)
        brief = {k: v for k, v in run.items() if k not in ("writes_by_table",)}
        print(f"  s5 {n}: {json.dumps(brief, ensure_ascii=False)[:300]}", flush=True)
    result = _rows(bench, runs, max(peaks, default=0.0))
    result["details"]["cli_startup"] = base
    result["details"]["one_recipient_cli"] = one
    return result


def _first_request_after_issue(bench: Bench, alert_id: int, since: int) -> float | None:
    """Seconds from the issuing transaction's last write (its audit row, just before the
    commit) to the first SMS request at the simulator: at most the wait after the commit."""
    (issued,) = bench.sql(
        "SELECT at FROM audit_events WHERE action = 'alert.issue' AND target = :t",
        t=f"alert {alert_id}",
    )[0]
    walls = [r["wall"] for r in bench.stack.sim_requests(since) if r["kind"] == "sms"]
    return round(min(walls) - issued.timestamp(), 3) if walls else None


def _dispatched(bench: Bench, alert_id: int) -> bool:
    """The dispatch task has planned every batch and every batch is queued."""
    state = bench.sql("SELECT state FROM alerts WHERE id = :a", a=alert_id)[0][0]
    return state != "dispatching" and _unpublished(bench) == 0


def _rows(bench: Bench, runs: list[dict], worker_peak: float) -> dict:
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
        first = run.get("first_request_after_issue_s")
        rows.append(
            row(
                f"{n:,}: first provider request after the issue's commit",
                first,
                "≤ 1",
                first is not None and first <= 1,
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
        "reproduce": f"{bench.command} --only s5",
    }


def _cli_issue(bench: Bench, audience: str) -> dict:
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
    return _cli(bench, args)


def _cli(bench: Bench, args: list[str]) -> dict:
    """Run one `relay` command; its wall time, its own peak RSS, its output."""
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        # Files, not pipes: a failing command may print megabytes (SQL in a traceback).
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, env=bench.stack.env(), cwd=ROOT, stdout=out_f, stderr=err_f)
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


def _unpublished(bench: Bench) -> int:
    return int(bench.sql("SELECT count(*) FROM outbox WHERE published_at IS NULL")[0][0])


def _table_stats(bench: Bench) -> dict[str, tuple[int, int]]:
    _settle_stats(bench)
    return {
        name: (int(ins), int(upd))
        for name, ins, upd in bench.sql(
            "SELECT relname, n_tup_ins, n_tup_upd FROM pg_stat_user_tables"
        )
    }


def _settle_stats(bench: Bench) -> None:
    """PostgreSQL publishes other sessions' counters within about a second: wait until
    two reads agree."""
    q = "SELECT sum(n_tup_ins + n_tup_upd) FROM pg_stat_user_tables"
    prev = None

    def stable() -> bool:
        nonlocal prev
        value = bench.sql(q)[0][0]
        same, prev = value == prev, value
        return same

    wait_until(stable, 30, "pg_stat settles", 1.1)


def _table_writes(bench: Bench, before: dict[str, tuple[int, int]]) -> dict:
    after = _table_stats(bench)
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
