"""CPU seconds per process during a measurement, from /proc: on a machine the benchmark keeps
busy, a throughput ratio is a ratio of CPU spent per message, so this says where it goes.

`Meter(parts)` reads each part's processes (utime + stime of /proc/PID/stat, all threads) at
start() and stop(); `parts` maps a name to a function giving that part's pids now, asked at
both ends (a process that appears in between counts from zero, one gone before the end is not
counted). The machine's own busy time (/proc/stat) gives what no part accounts for: other
people's work on a shared machine, the kernel, processes not listed.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) the process has used; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15)


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores, idle and iowait excluded)."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice; guests are in user
    return (sum(values[:8]) - values[3] - values[4]) / TICK


def children_cpu() -> float:
    """CPU seconds of this process's finished, waited-for children (a measuring process)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Meter:
    def __init__(self, parts: dict[str, Callable[[], list[int]]]) -> None:
        self.parts = parts
        self._start: dict[str, dict[int, float]] = {}
        self._t0 = self._busy0 = self._children0 = 0.0

    def _read(self) -> dict[str, dict[int, float]]:
        found: dict[str, dict[int, float]] = {}
        for name, pids in self.parts.items():
            found[name] = {}
            for pid in pids():
                cpu = process_cpu(pid)
                if cpu is not None:
                    found[name][pid] = cpu
        return found

    def start(self) -> Meter:
        self._start = self._read()
        self._children0 = children_cpu()
        self._busy0 = machine_busy()
        self._t0 = time.perf_counter()
        return self

    def stop(self, messages: int, children_as: str | None = None) -> dict[str, Any]:
        """CPU per part over the measurement, in seconds and in ms per message (or request);
        `children_as`: the name under which finished child processes count (a measuring
        process such as the asyncio-only limit)."""
        wall = time.perf_counter() - self._t0
        busy = machine_busy() - self._busy0
        end = self._read()
        seconds = {
            name: sum(cpu - self._start.get(name, {}).get(pid, 0.0) for pid, cpu in pids.items())
            for name, pids in end.items()
        }
        if children_as:
            seconds[children_as] = children_cpu() - self._children0
        seconds["other (machine total − the above)"] = busy - sum(seconds.values())
        cores = os.cpu_count() or 1
        return {
            "wall_s": round(wall, 2),
            "machine_busy_share": round(busy / (cores * wall), 3) if wall else None,
            "cpu_s": {k: round(v, 2) for k, v in seconds.items()},
            "cpu_ms_per_item": {k: round(1000 * v / messages, 3) for k, v in seconds.items()},
            "cpu_ms_per_item_total": round(1000 * busy / messages, 3),
        }
