"""`make bench` / `python -m ops.bench [--quick] [--only s1,s4]`: issues 8, 15 and 17's scenarios.

Production shape: PostgreSQL (database `relay_bench`, recreated per run), Redis (db 13, key
prefix `relay-bench:`), two `relay worker` processes (prefork, 2 each), `relay serve`'s app,
and the carrier simulator on loopback in its fastest mode (no callbacks, no validation); s7
adds `relay scheduler`.
The machine is shared, so each figure that matters is a ratio against a reference measured in
the same run. Writes ops/bench/RESULTS.md and ops/bench/results.json.

  s1 throughput vs the asyncio-only limit and vs one Celery task per message
  s2 a provider limit (SMS 50 segments/s) honoured and saturated by two workers
  s3 the ward drill at Twilio's default limits vs the theoretical minimum
  s4 latency of a one-recipient real alert, idle and behind a large exercise
  s5 planning and dispatch at 10,000 / 20,000 / 50,000 / 100,000 recipients: time to the
     first provider request, memory, rows
  s6 webhook ingest (signature + database) vs a no-op endpoint on the same server
  s8 a JMA bulletin for an `auto` rule → the first provider request of its alert
  s7 a worker SIGKILLed at a quarter of a 3,000-recipient alert with the default lease and
     visibility timeout: recovery time, duplicates against the bound
The SMS segments of every built-in template (ops/bench/segments.py) are a section of every run.
"""

from __future__ import annotations

import argparse
import os
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from ops.bench import directory, segments
from ops.bench.harness import Bench, row
from ops.bench.report import write_report
from ops.bench.scenarios import (
    s1_throughput,
    s2_provider_limit,
    s3_ward_drill,
    s4_latency,
    s5_planning,
    s6_webhooks,
    s7_worker_kill,
    s8_jma,
)
from ops.bench.stack import ROOT, machine

HERE = Path(__file__).resolve().parent
# In the order they run. s3 first: it uses the sample directory. s7 last: the killed worker's
# tasks stay in Redis until the visibility timeout (600 s), after everything else.
SCENARIOS = {
    "s3": s3_ward_drill.run,
    "s1": s1_throughput.run,
    "s4": s4_latency.run,
    "s6": s6_webhooks.run,
    "s2": s2_provider_limit.run,
    "s5": s5_planning.run,
    "s8": s8_jma.run,
    "s7": s7_worker_kill.run,
}


def run_all(bench: Bench, only: list[str]) -> None:
    """Start the stack, then each scenario of `only`, in SCENARIOS' order, on its directory.
    A scenario that fails becomes an error row; the others still run."""
    bench.start()
    # The city-sized directory (the largest of s1, s2, s4) first; it grows to the scale
    # scenario's size only before s5, so the other figures are on a city, not 100,000.
    city = max(bench.size["s1"], bench.size["s2"], bench.size["s4_exercise"], bench.size["s7"])
    largest = max(city, *bench.size["s5"])
    sizes = ("s1", "s2", "s4_exercise", "s7")
    tags = {f"first{n}": n for n in {*(bench.size[k] for k in sizes), *bench.size["s5"]}}
    loaded = 0
    for key in SCENARIOS:
        if key not in only:
            continue
        want = 0 if key == "s3" else largest if key == "s5" else city
        if want > loaded:
            seconds = directory.load(bench.stack.db_url, want, tags=tags, start=loaded)
            print(f"  directory: {loaded:,} → {want:,} synthetic contacts in {seconds:.1f}s")
            loaded = want
        if key == "s6" and "s1" not in only:
            continue
        print(f"{key} ...", flush=True)
        started = time.perf_counter()
        try:
            bench.results[key] = SCENARIOS[key](bench)
        except Exception as exc:
            traceback.print_exc()
            bench.results[key] = {
                "title": key,
                "rows": [row("error", f"{type(exc).__name__}: {exc}"[:300], "", False)],
                "details": {},
                "reproduce": f"{bench.command} --only {key}",
            }
        bench.results[key]["seconds"] = round(time.perf_counter() - started, 1)
        if key == "s3":
            bench.stack.truncate()  # the sample directory goes; the synthetic one comes
        print(f"{key} done in {bench.results[key]['seconds']}s", flush=True)
        for r in bench.results[key]["rows"]:
            print(f"   {r['figure']}: {r['value']} {r['unit']} {r['target']} {r['verdict']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, about 4 minutes (s7 waits out the default 60-s claim lease)",
    )
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
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from s1..s8")
    info = {**machine(), "date": datetime.now(UTC).isoformat(timespec="seconds")}
    bench = Bench(args.quick, args.workdir, profile=args.profile)
    started = time.perf_counter()
    try:
        run_all(bench, only)
    finally:
        bench.stack.close()
    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    info["total_seconds"] = round(time.perf_counter() - started, 1)
    info["mode"] = "quick" if args.quick else "full"
    info["command"] = bench.command + ("" if only == list(SCENARIOS) else f" --only {args.only}")
    if bench.profiles:
        info["profiles"] = bench.profiles
    bench.results["segments"] = segments.section()
    write_report(args.out, info, bench.results)
    print(f"wrote {args.out / 'RESULTS.md'} and results.json in {info['total_seconds']}s")
    return 0
