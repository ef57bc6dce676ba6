"""The production shape for the benchmarks, started from the real entry points.

PostgreSQL (a dedicated database, dropped and created per run), Redis (a dedicated db number and
key prefix), the carrier simulator as its own process in its fastest mode (no callbacks, no
spec validation), the relay's HTTP app as its own process, and `relay worker` processes.
Nothing of the product is replaced; the only thing added is a no-op endpoint on the bench's HTTP
server (ops/bench/server.py) to compare the webhook against.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get(
    "RELAY_BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DB_NAME = os.environ.get("RELAY_BENCH_DB", "relay_bench")  # dropped and created per run
# Tests use db 14; the benchmarks keep to their own db and prefix and delete only their keys.
REDIS_URL = os.environ.get("RELAY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
BROKER_PREFIX = "relay-bench:"
FAST = {"sms": 100_000.0, "voice": 10_000.0, "email": 10_000.0}  # no limit in the way
TWILIO_DEFAULTS = {"sms": 10.0, "voice": 1.0, "email": 14.0}
POOL = 2  # pool processes per `relay worker` (--concurrency), as docker-compose runs them


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval=0.05) -> Any:
    """Poll until predicate() is truthy (and return it); raise at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s: {what}")
        time.sleep(interval)


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (VmHWM), in MB; None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    """All descendants of a process, from /proc (a worker's pool processes)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                kids = [int(x) for x in task.read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def machine() -> dict[str, Any]:
    import platform

    return {
        "cores": os.cpu_count(),
        "memory_gb": round(_meminfo_kb("MemTotal") / 2**20, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def _meminfo_kb(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


class Proc:
    """A child process in its own session, stopped by its process group."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        out = open(log, "ab")  # noqa: SIM115
        self.popen = subprocess.Popen(
            args,
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE if name == "simulator" else out,
            stderr=out,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def peak_rss(self) -> dict[int, float]:
        """Peak RSS of the process and each of its children (a worker's pool), MB."""
        peaks = {}
        for pid in [self.pid, *children(self.pid)]:
            value = peak_rss_mb(pid)
            if value is not None:
                peaks[pid] = value
        return peaks

    def kill(self) -> None:
        """SIGKILL the whole process group (a worker's main process and its pool), as a
        crash or the OOM killer would; returns once it is gone."""
        if self.popen.poll() is None:
            os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
                self.popen.wait(20)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(10)


class Stack:
    def __init__(
        self, workdir: Path, db_name: str = DB_NAME, broker_prefix: str = BROKER_PREFIX
    ) -> None:
        self.workdir = workdir
        self.db_name = db_name
        self.broker_prefix = broker_prefix
        workdir.mkdir(parents=True, exist_ok=True)
        self.account_sid = "AC" + secrets.token_hex(16)
        self.auth_token = secrets.token_hex(16)
        self.web_port = free_port()
        self.public_url = f"http://127.0.0.1:{self.web_port}"
        self.db_url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db_name
        self.sim: Proc | None = None
        self.sim_url = ""
        self.smtp_port = 0
        self.web: Proc | None = None
        self.workers: list[Proc] = []
        self.scheduler: Proc | None = None
        self._started = 0  # workers started so far: each gets its own log

    # --- services -------------------------------------------------------------------------
    def fresh_database(self) -> None:
        from sqlalchemy import create_engine, text

        from relay import migrate

        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{self.db_name}"'))
        admin.dispose()
        migrate.upgrade(self.db_url)

    def truncate(self) -> None:
        from sqlalchemy import text

        from relay.db import engine_for
        from relay.models import Base

        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with engine_for(self.db_url).begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))

    def clear_redis(self) -> None:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        patterns = [self.broker_prefix + "*", f"relay:rl:twilio-*:{self.account_sid}:*"]
        if self.broker_prefix == BROKER_PREFIX:
            patterns.append("relay-bench-percall*")
        for pattern in patterns:
            keys = list(client.scan_iter(match=pattern, count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])

    def env(self, rates: dict[str, float] | None = None) -> dict[str, str]:
        rates = rates or FAST
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "RELAY_DATABASE_URL": self.db_url,
            "RELAY_BROKER_URL": REDIS_URL,
            "RELAY_BROKER_PREFIX": self.broker_prefix,
            "RELAY_WORKDIR": str(self.workdir),
            "RELAY_PUBLIC_URL": self.public_url,
            "RELAY_SECRET_KEY": "bench-secret-key-0123456789",
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            "TWILIO_FROM_NUMBER": "+815000000000",
            "TWILIO_API_URL": self.sim_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp_port or 25),
            "SMTP_STARTTLS": "false",
            "RELAY_SMS_RATE": str(rates["sms"]),
            "RELAY_VOICE_RATE": str(rates["voice"]),
            "RELAY_EMAIL_RATE": str(rates["email"]),
            "RELAY_LOG_LEVEL": "WARNING",
        }

    def start_simulator(self) -> None:
        args = [
            sys.executable, "-m", "simulator",
            "--no-callbacks", "--validate", "off",
            "--account-sid", self.account_sid,
            "--sms-webhook", f"{self.public_url}/webhooks/twilio/sms",
        ]  # fmt: skip
        env = {**self.env(), "TWILIO_AUTH_TOKEN": self.auth_token}
        self.sim = Proc("simulator", args, env, self.workdir / "simulator.log")
        assert self.sim.popen.stdout is not None
        line = self.sim.popen.stdout.readline()
        if not line:
            raise RuntimeError(f"simulator did not start; see {self.sim.log}")
        ready = json.loads(line)
        self.sim_url, self.smtp_port = ready["api_url"], int(ready["smtp_port"])

    def start_web(self, rates: dict[str, float] | None = None) -> None:
        args = [sys.executable, "-m", "ops.bench.server", "--port", str(self.web_port)]
        self.web = Proc("web", args, self.env(rates), self.workdir / "web.log")
        wait_until(self._web_up, 30, "the relay's HTTP app did not start", 0.1)

    def _web_up(self) -> bool:
        try:
            with urllib.request.urlopen(self.public_url + "/healthz", timeout=1) as r:  # noqa: S310
                return bool(r.status == 200)
        except OSError:
            return False

    def start_workers(self, rates: dict[str, float] | None = None, n: int = 2) -> None:
        self.stop_workers()
        for _ in range(n):
            self.start_worker(rates)

    def start_worker(self, rates: dict[str, float] | None = None) -> Proc:
        """One more `relay worker` (POOL pool processes), with these rates."""
        args = [
            sys.executable, "-c", "from relay.cli import main; main()",
            "worker", f"--concurrency={POOL}", "--loglevel=WARNING",
        ]  # fmt: skip
        name = f"worker-{self._started}"
        self._started += 1
        worker = Proc(name, args, self.env(rates), self.workdir / f"{name}.log")
        self.workers.append(worker)
        return worker

    def start_scheduler(self, rates: dict[str, float] | None = None) -> None:
        """`relay scheduler` with its default tick (stale claims, lost work, outbox sweep)."""
        self.stop_scheduler()
        args = [sys.executable, "-c", "from relay.cli import main; main()", "scheduler"]
        self.scheduler = Proc("scheduler", args, self.env(rates), self.workdir / "scheduler.log")

    def stop_scheduler(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []

    def workers_peak_rss(self) -> list[dict[str, float]]:
        """Per worker: its main process and each pool process, peak RSS in MB."""
        return [
            {("main" if pid == w.pid else f"pool-{pid}"): mb for pid, mb in w.peak_rss().items()}
            for w in self.workers
        ]

    def close(self) -> None:
        self.stop_scheduler()
        self.stop_workers()
        for proc in (self.web, self.sim):
            if proc is not None:
                proc.stop()

    def drop_database(self) -> None:
        from sqlalchemy import create_engine, text

        from relay.db import engine_for

        engine_for(self.db_url).dispose()
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
        admin.dispose()

    # --- the simulator's record -----------------------------------------------------------
    def sim_get(self, path: str) -> Any:
        with urllib.request.urlopen(self.sim_url + path, timeout=60) as r:  # noqa: S310
            return json.loads(r.read())

    def sim_reset(self) -> None:
        url = self.sim_url + "/_sim/reset"
        req = urllib.request.Request(url, data=b"", method="POST")  # noqa: S310
        with urllib.request.urlopen(req, timeout=30):  # noqa: S310
            pass

    def sim_requests(self, since: int = 0) -> list[dict[str, Any]]:
        """Provider requests received (SMS, calls, emails), with their receive times."""
        return [
            r
            for r in self.sim_get(f"/_sim/log?since={since}")
            if r["kind"] in ("sms", "call", "email")
        ]

    def sim_count(self) -> int:
        return int(self.sim_get("/_sim/stats")["records"])
