"""Shared pieces of the fault tests: a directory of many recipients, a Redis server of the
test's own (so it can be stopped), issuing without the test process publishing, and counting
what the carrier simulator received per recipient."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from relay.alerts.issuing import IssueRequest, issue_alert
from relay.db import transaction
from relay.directory.audience import parse_audience
from simulator import SimLog
from tests.conftest import _truncate
from tests.harness import Stack, free_port, wait_until
from tests.test_fanout_e2e import _bulk_directory

__all__ = ["RedisServer", "accepted_per_recipient", "bulk_directory", "fresh_pg", "report"]

bulk_directory = _bulk_directory


@pytest.fixture
def fresh_pg(pg_url: str) -> Iterator[str]:
    """The session's PostgreSQL database, emptied. Fault tests run on PostgreSQL only: they
    need real processes on a shared server and would double the suite's time on SQLite too."""
    _truncate(pg_url)
    yield pg_url


def accepted_per_recipient(log: SimLog, kind: str = "sms") -> Counter[str]:
    """Requests the provider took (it has the message and will send it), per recipient. A
    "timeout" fault is taken too: the message went out, only the answer was late."""
    return Counter(r.to or "" for r in log.of_kind(kind) if r.status == 201)  # type: ignore[arg-type]


def duplicates(counts: Counter[str]) -> int:
    return sum(n - 1 for n in counts.values() if n > 1)


def report(name: str, **numbers: object) -> None:
    """One line per fault test with its measurements (pytest -s shows it; GUARANTEES.md
    quotes them)."""
    line = f"[fault] {name}: " + ", ".join(f"{k}={v}" for k, v in numbers.items())
    print("\n" + line)
    out = os.environ.get("RELAY_FAULT_REPORT")
    if out:
        with open(out, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def issue_unpublished(stack: Stack, audience: str = "all", **fields: object) -> int:
    """Issue an alert and leave publishing to the scheduler's outbox sweeper, as after a
    commit whose publish failed (used when the test process's Celery app points at another
    broker than the workers')."""
    request = IssueRequest(audience=parse_audience(audience), **fields)  # type: ignore[arg-type]
    with transaction(stack.settings.database_url) as session:
        return issue_alert(session, stack.settings, request).id


class RedisServer:
    """A `redis-server` of the test's own on a free port, without persistence (--save ""):
    stopping it loses every queued task, as a restarted cache node does."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=1)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(up, 20, f"redis-server on port {self.port} did not start", 0.1)
        client.close()
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
