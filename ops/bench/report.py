"""RESULTS.md and results.json from one run's results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ORDER = ("s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "segments")


def write_report(out: Path, info: dict[str, Any], results: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(
        json.dumps({"machine": info, "scenarios": results}, ensure_ascii=False, indent=2) + "\n",
        encoding="utf-8",
    )
    (out / "RESULTS.md").write_text(render(info, results), encoding="utf-8")


def _value(r: dict[str, Any]) -> str:
    value = r["value"]
    if isinstance(value, float):
        value = f"{value:,.3f}".rstrip("0").rstrip(".")
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value} {r['unit']}".strip().replace("\n", " ").replace("|", "/")


def render(info: dict[str, Any], results: dict[str, Any]) -> str:
    lines = [
        "# Benchmark results (issues 8 and 15)",
        "",
        f"Run: {info['date']}, `{info['command']}` ({info['mode']} mode), "
        f"{info['total_seconds']} s in all.",
        f"Machine: {info['cores']} cores ({info['cpu']}), {info['memory_gb']} GB memory, "
        f"Python {info['python']}, Linux {info['kernel']}. Load average at start "
        f"{info['load_average_at_start']}, at end {info['load_average_at_end']}.",
        "",
        "Production shape: PostgreSQL (database `relay_bench`, recreated per run), Redis "
        "(db 13, prefix `relay-bench:`), two `relay worker` processes (prefork, 2 pool "
        "processes each), the relay's HTTP app served as `relay serve` serves it, and the "
        "carrier simulator as its own process in its fastest mode (`--no-callbacks "
        "--validate off`); s7 adds `relay scheduler`. Ratios are against references measured "
        "in the same run; absolute numbers depend on the machine and its load. CPU per message "
        "by process (`cpu_*` in s1's and s6's details) is read from /proc around each "
        "measurement (ops/bench/cpu.py).",
        "",
    ]
    busy = max(info["load_average_at_start"] + info["load_average_at_end"])
    if busy > 0.5 * info["cores"]:
        lines += [
            f"**This run was on a shared, loaded machine** (load average up to {busy} on "
            f"{info['cores']} cores from other work running at the same time): absolute figures "
            "are depressed and noisy; the ratios against references measured in the same run "
            "are what to compare, and even they move with the load.",
            "",
        ]
    if info.get("note"):
        lines += [info["note"], ""]
    lines += [
        "Where the time goes in the figures that miss, and what would fix them: "
        "[ANALYSIS.md](ANALYSIS.md) (profiles: `python -m ops.bench.profile`, or "
        "`python -m ops.bench --profile`).",
        "",
    ]
    lines += ["| scenario | figure | value | target | verdict |", "|---|---|---|---|---|"]
    for key in ORDER:
        if key not in results:
            continue
        for r in results[key]["rows"]:
            lines.append(
                f"| {key} | {r['figure']} | {_value(r)} | {r['target'] or ''} | {r['verdict']} |"
            )
    lines.append("")
    for key in ORDER:
        if key not in results:
            continue
        res = results[key]
        lines += [f"## {res['title']}", ""]
        lines += ["| figure | value | target | verdict |", "|---|---|---|---|"]
        for r in res["rows"]:
            lines.append(f"| {r['figure']} | {_value(r)} | {r['target'] or ''} | {r['verdict']} |")
        lines += [
            "",
            f"Reproduce: `{res['reproduce']}` (from the repository root, PostgreSQL and Redis "
            f"on 127.0.0.1; `make bench` runs all). Took {res.get('seconds', '?')} s.",
            "",
        ]
        for note in res.get("notes", []):
            lines += [note, ""]
        details = json.dumps(_short(res.get("details", {})), ensure_ascii=False, indent=1)
        lines += ["<details><summary>details</summary>", "", "```json", details, "```", "",
                  "</details>", ""]  # fmt: skip
    for name, text in info.get("profiles", {}).items():
        lines += [f"## Profile (py-spy): {name}", "", "```", text, "```", ""]
    return "\n".join(lines)


def _short(value: Any) -> Any:
    """Long lists (latency samples) cut for the page; results.json keeps them whole."""
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    if isinstance(value, list) and len(value) > 12:
        return [*value[:12], f"... {len(value) - 12} more in results.json"]
    return value
