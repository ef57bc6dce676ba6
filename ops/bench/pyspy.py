"""py-spy on a running process (a worker's pool, the HTTP server) during a measurement, and a
short text summary of where its time went. Opt-in (`--profile`): sampling costs a little CPU."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path


class Sampler:
    """`py-spy record --format raw` on the given pids until stopped."""

    def __init__(self, pids: list[int], out: Path, seconds: float = 600) -> None:
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.out = out
        self.procs = [
            subprocess.Popen(
                [
                    exe,
                    "record",
                    "--pid",
                    str(pid),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--rate",
                    "200",
                    "--duration",
                    str(int(seconds)),
                    "--output",
                    str(out.with_suffix(f".{pid}.txt")),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid in pids
        ]

    def stop(self) -> str:
        for proc in self.procs:
            proc.send_signal(2)  # SIGINT: py-spy writes what it has and exits
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        files = sorted(self.out.parent.glob(self.out.name + ".*.txt"))
        return summarize(files)


def summarize(files: list[Path], top: int = 14) -> str:
    """Inclusive share of the samples for the project's own frames, and the hottest leaves."""
    inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for path in files:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = stack.split(";")
            for frame in set(frames):
                if any(part in frame for part in ("relay/", "channels/", "workers/")):
                    inclusive[_name(frame)] += n
            leaves[_name(frames[-1])] += n
    if not total:
        return "no samples"
    lines = [f"{total} samples; the project's frames (inclusive share):"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    lines += ["hottest leaf frames (self):"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in leaves.most_common(8)]
    return "\n".join(lines)


def _name(frame: str) -> str:
    # raw frames look like "function (path/to/file.py:123)"
    func, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{func} ({where.rsplit(':', 1)[0]})"
