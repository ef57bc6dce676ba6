"""The real components, started for end-to-end tests: the HTTP app (uvicorn, in a thread of
the test process), Celery workers (separate `relay worker` processes on real Redis), and the
carrier simulator (in a thread). Nothing of the project's own code is replaced."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn

from relay.config import Settings
from relay.web.app import create_app

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], object], timeout: float, message: str, interval: float = 0.05
) -> None:
    """Poll until predicate() is truthy; fail with `message` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s: {message}")


class WebServer:
    """The relay's HTTP app on loopback, in a background thread."""

    def __init__(self, settings: Settings, port: int) -> None:
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning",
            access_log=False, lifespan="off",
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> WebServer:
        self.thread.start()
        wait_until(lambda: self.server.started, 10, "uvicorn did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class Worker:
    """One `relay worker` process (Celery, prefork pool) with the given environment."""

    def __init__(self, env: dict[str, str], concurrency: int = 2, log: Path | None = None) -> None:
        self.env = {**os.environ, **env}
        self.concurrency = concurrency
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from relay.cli import main; main()", "worker",
             f"--concurrency={self.concurrency}", "--loglevel=WARNING"],
            env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        return self

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
