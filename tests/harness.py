"""The real components, started for end-to-end tests: the HTTP app (uvicorn, in a thread of
the test process), Celery workers (separate `relay worker` processes on real Redis), and the
carrier simulator (in a thread). Nothing of the project's own code is replaced."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn
from sqlalchemy import func, select

from relay.alerts import status as relay_status
from relay.alerts.issuing import IssueRequest, issue_alert
from relay.alerts.status import alert_status
from relay.config import Settings, load_settings
from relay.db import transaction
from relay.delivery.runtime import get_runtime, reset_runtime
from relay.delivery.states import is_final
from relay.directory.audience import parse_audience
from relay.directory.csv_format import parse_directory
from relay.directory.store import apply_directory
from relay.models import Alert, Delivery
from relay.web.app import create_app
from simulator import CarrierSimulator, Population, SimulatorThread
from tests.conftest import SHARED, TEST_BROKER, TEST_BROKER_PREFIX, flush_test_broker

ROOT = Path(__file__).resolve().parents[1]
TWILIO_SPEC = SHARED / "twilio" / "twilio_api_v2010.json"


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


def run_relay(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`relay ARGS` as a newcomer runs it: none of this shell's RELAY_/TWILIO_/SMTP_ settings,
    only `env`'s; output captured as text."""
    return subprocess.run(
        [sys.executable, "-c", "from relay.cli import main; main()", *args],
        cwd=cwd,
        env={**newcomer_environ(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def reserve_port() -> socket.socket:
    """A loopback socket bound to a free port and held: nothing else (another test, an outgoing
    connection's ephemeral port) can take the port before the server listens on it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class WebServer:
    """The relay's HTTP app on loopback, in a background thread, serving the given bound
    socket."""

    def __init__(self, settings: Settings, sock: socket.socket) -> None:
        config = uvicorn.Config(
            create_app(settings),
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )

    def __enter__(self) -> WebServer:
        self.thread.start()

        def up() -> bool:
            if not self.thread.is_alive() and not self.server.started:
                raise AssertionError("uvicorn stopped while starting (see its log above)")
            return self.server.started

        wait_until(up, 30, "uvicorn did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def newcomer_environ() -> dict[str, str]:
    """This process's environment without any RELAY_/TWILIO_/SMTP_ setting (conftest sets the
    test broker for everyone): what a new user's shell has."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "TWILIO_", "SMTP_"))}


class Worker:
    """One `relay worker` process (Celery, prefork pool), or another `relay` process given by
    `args` (e.g. the scheduler), with the given environment (`newcomer`: only `env`'s relay
    settings, the defaults for the rest)."""

    def __init__(
        self,
        env: dict[str, str],
        concurrency: int = 2,
        log: Path | None = None,
        args: list[str] | None = None,
        *,
        newcomer: bool = False,
        cwd: Path = ROOT,
    ) -> None:
        self.env = {**(newcomer_environ() if newcomer else os.environ), **env}
        self.cwd = cwd  # a relative RELAY_WORKDIR (the default var/) is under it
        self.args = args or ["worker", f"--concurrency={concurrency}", "--loglevel=WARNING"]
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from relay.cli import main; main()", *self.args],
            env=self.env,
            cwd=self.cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
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


class Stack:
    """Simulator + HTTP app + worker processes around one database, configured like
    production (PostgreSQL or SQLite, Redis broker, Redis rate limiter)."""

    def __init__(
        self,
        db_url: str,
        workdir: Path,
        population: Population | None = None,
        *,
        sms_rate: float = 200,
        voice_rate: float = 50,
        email_rate: float = 100,
        workers: int = 1,
        concurrency: int = 2,
        scheduler: bool = False,
        scheduler_tick: float | None = 0.5,  # None: the scheduler's default (2 s)
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.scheduler_tick = scheduler_tick
        self.account_sid = "AC" + secrets.token_hex(16)
        self.auth_token = secrets.token_hex(16)
        self.socket = reserve_port()
        self.port = int(self.socket.getsockname()[1])
        self.public_url = f"http://127.0.0.1:{self.port}"
        self.sim = CarrierSimulator(
            self.account_sid,
            self.auth_token,
            f"{self.public_url}/webhooks/twilio/sms",
            population=population or Population(),
            spec_path=TWILIO_SPEC if TWILIO_SPEC.exists() else None,
        )
        self.sim_thread = SimulatorThread(self.sim)
        self.env = {
            "RELAY_DATABASE_URL": db_url,
            "RELAY_BROKER_URL": TEST_BROKER,
            "RELAY_BROKER_PREFIX": TEST_BROKER_PREFIX,
            "RELAY_WORKDIR": str(workdir),
            "RELAY_PUBLIC_URL": self.public_url,
            "RELAY_SECRET_KEY": "e2e-secret-key-0123456789",
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            "TWILIO_FROM_NUMBER": "+815000000000",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_STARTTLS": "false",
            "RELAY_SMS_RATE": str(sms_rate),
            "RELAY_VOICE_RATE": str(voice_rate),
            "RELAY_EMAIL_RATE": str(email_rate),
            **(env or {}),
        }
        self.n_workers = workers
        self.concurrency = concurrency
        self.with_scheduler = scheduler
        self.workers: list[Worker] = []
        self.web: WebServer | None = None
        self._saved_env: dict[str, str | None] = {}

    def __enter__(self) -> Stack:
        flush_test_broker()  # first: skips the test when Redis is not there
        self.sim_thread.start()
        self.env["TWILIO_API_URL"] = self.sim_thread.api_url
        self.env["SMTP_PORT"] = str(self.sim_thread.smtp_port)
        for key, value in self.env.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        reset_runtime()
        self.settings = load_settings()
        self.web = WebServer(self.settings, self.socket).__enter__()
        for n in range(self.n_workers):
            self.start_worker(n)
        if self.with_scheduler:
            log = self.workdir / "scheduler.log"
            tick = [] if self.scheduler_tick is None else ["--tick", str(self.scheduler_tick)]
            self.workers.append(Worker(self.env, log=log, args=["scheduler", *tick]).start())
        return self

    def start_worker(self, n: int | None = None) -> Worker:
        n = len(self.workers) if n is None else n
        worker = Worker(self.env, self.concurrency, self.workdir / f"worker-{n}.log").start()
        self.workers.append(worker)
        return worker

    def __exit__(self, *exc: object) -> None:
        for worker in self.workers:
            worker.stop()
        if self.web:
            self.web.__exit__()
        self.socket.close()
        self.sim_thread.stop()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_runtime()

    # --- acting as an operator ------------------------------------------------------------
    def import_directory(self, csv_path: Path) -> None:
        with transaction(self.settings.database_url) as session:
            apply_directory(session, parse_directory(csv_path.read_bytes()), actor="test")

    def issue(self, audience: str = "all", **fields: object) -> int:
        request = IssueRequest(audience=parse_audience(audience), **fields)  # type: ignore[arg-type]
        with transaction(self.settings.database_url) as session:
            alert_id = issue_alert(session, self.settings, request).id
        import workers.tasks  # noqa: F401  (registers the outbox publisher)

        get_runtime().publish_outbox()
        return alert_id

    def states(self, alert_id: int, by_channel: bool = False) -> dict[str, int]:
        with transaction(self.settings.database_url) as session:
            rows = session.execute(
                select(Delivery.channel, Delivery.state, func.count())
                .where(Delivery.alert_id == alert_id)
                .group_by(Delivery.channel, Delivery.state)
            ).all()
        counts: dict[str, int] = {}
        for channel, state, count in rows:
            key = f"{channel}:{state}" if by_channel else state
            counts[key] = counts.get(key, 0) + count
        return counts

    def deliveries(self, alert_id: int) -> list[Delivery]:
        with transaction(self.settings.database_url) as session:
            return list(session.scalars(select(Delivery).where(Delivery.alert_id == alert_id)))

    def status(self, alert_id: int) -> dict[str, object]:
        with transaction(self.settings.database_url) as session:
            alert = session.get(Alert, alert_id)
            assert alert is not None
            return alert_status(session, alert)

    def wait_sent(self, alert_id: int, timeout: float = 120) -> None:
        """Until no delivery of the alert is still waiting to be sent or being sent."""

        def done() -> bool:
            states = self.states(alert_id)
            return not any(states.get(s, 0) for s in ("queued", "sending"))

        try:
            wait_until(done, timeout, f"alert {alert_id} still sending", 0.2)
        except AssertionError as exc:
            states = self.states(alert_id)
            raise AssertionError(f"{exc}: {states}\n{self.process_report()}") from None

    def process_report(self) -> str:
        """Each relay process: alive or its exit code, and the end of its log — what a
        timed-out wait needs to say which part stopped."""
        lines = []
        for worker in self.workers:
            code = worker.proc.poll() if worker.proc else None
            status = "alive" if code is None else f"exit {code}"
            lines.append(f"--- {' '.join(worker.args)}: {status}")
            if worker.log_path and worker.log_path.exists():
                lines += worker.log_path.read_text(errors="replace").splitlines()[-15:]
        return "\n".join(lines)

    def wait_settled(self, alert_id: int, timeout: float = 240) -> None:
        """Until nothing is left to send or escalate and the simulated people are done."""

        def settled() -> bool:
            with transaction(self.settings.database_url) as session:
                return relay_status.settled(session, alert_id) and not self.sim.pending

        wait_until(settled, timeout, f"alert {alert_id} never settled", 0.5)

    def wait_final(self, alert_id: int, timeout: float = 120) -> None:
        """Until every sent delivery has reached a final state from the provider's callbacks."""
        self.wait_sent(alert_id, timeout)

        def final() -> bool:
            return all(is_final(*key.split(":")) for key in self.states(alert_id, by_channel=True))

        wait_until(
            final, timeout, f"alert {alert_id} not final: {self.states(alert_id, True)}", 0.2
        )
        self.sim_thread.wait_idle(timeout)
