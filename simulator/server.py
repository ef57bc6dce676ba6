"""CarrierSimulator (Twilio REST + SMTP + recipients on one event loop) and a thread to host it."""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from .behaviour import Behaviour, Population
from .callbacks import Courier
from .context import Context, Violation
from .control import Control
from .links import default_link_base
from .log import SimLog
from .resources import Call, Message
from .scheduler import Scheduler
from .smtp import Certificates, serve_smtp
from .spec import default_spec_path, load_spec
from .twilio_api import TwilioApi, ValidateMode

T = TypeVar("T")
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")


class CarrierSimulator:
    """Twilio's Messages/Calls API and an SMTP server on loopback, with simulated recipients.

    See the package docstring for the whole API.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        sms_webhook_url: str,
        population: Population | None = None,
        speed: float | None = None,
        smtp_username: str | None = None,
        smtp_password: str | None = None,
        smtp_starttls: bool = False,
        spec_path: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        smtp_port: int = 0,
        link_base: str | None = None,
        service_number: str = "+815000000000",
        validate: ValidateMode = "all",
        validate_every: int = 10,
        callbacks: bool = True,
    ) -> None:
        if not ACCOUNT_SID.match(account_sid):
            raise ValueError("account_sid must be 'AC' followed by 32 hex digits")
        self.account_sid = account_sid
        self.population = population or Population()
        if speed is not None:
            self.population.speed = speed  # the explicit argument wins over the population's
        if self.population.speed <= 0:
            raise ValueError("speed must be positive")
        self.host, self.port, self.smtp_port = host, port, smtp_port
        self.spec_path = Path(spec_path) if spec_path is not None else default_spec_path()
        self.log = SimLog()
        scheduler = Scheduler(self.population.speed)
        self._ctx = Context(
            account_sid=account_sid,
            population=self.population,
            scheduler=scheduler,
            courier=Courier(auth_token, self.log, scheduler),
            log=self.log,
            sms_webhook_url=sms_webhook_url,
            link_base=link_base or default_link_base(sms_webhook_url),
            service_number=service_number,
            callbacks=callbacks,
        )
        self._auth_token = auth_token
        self._validate: ValidateMode = validate
        self._validate_every = validate_every
        self._smtp_auth = (smtp_username, smtp_password)
        self._certificates = Certificates() if smtp_starttls else None
        self._api: TwilioApi | None = None
        self._runner: web.AppRunner | None = None
        self._smtp: asyncio.Server | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        spec = load_spec(self.spec_path) if self._validate != "off" else None
        await self._ctx.courier.start()
        self._api = TwilioApi(
            self._ctx, self._auth_token, spec, self._validate, self._validate_every
        )
        app = web.Application()
        app.add_routes(self._api.routes())
        app.add_routes(Control(self._ctx).routes())
        # No access log: at thousands of requests a second it would cost more than the work.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        username, password = self._smtp_auth
        self._smtp = await serve_smtp(
            self._ctx,
            host=self.host,
            port=self.smtp_port,
            username=username,
            password=password,
            certificates=self._certificates,
        )
        self.smtp_port = self._smtp.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._api is not None:
            self._api.release()
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None
        await self._ctx.scheduler.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._ctx.courier.close()

    async def wait_idle(self, timeout: float = 30.0) -> None:
        """Return when no callback, reply, tap or call is scheduled or running.

        Raises TimeoutError if that takes longer than `timeout` seconds.
        """
        await self._ctx.scheduler.wait_idle(timeout)

    async def __aenter__(self) -> CarrierSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- what tests look at ---------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def speed(self) -> float:
        return self.population.speed

    @property
    def spec_loaded(self) -> bool:
        return self._api is not None and self._api.spec is not None

    @property
    def violations(self) -> list[Violation]:
        return self._ctx.violations

    @property
    def errors(self) -> list[str]:
        """Exceptions raised inside the simulator's own jobs (should stay empty)."""
        return self._ctx.scheduler.errors

    @property
    def messages(self) -> dict[str, Message]:
        return self._ctx.messages

    @property
    def calls(self) -> dict[str, Call]:
        return self._ctx.calls

    @property
    def pending(self) -> int:
        return self._ctx.scheduler.pending

    def set_behaviour(self, key: str, behaviour: Behaviour) -> None:
        self.population.set(key, behaviour)

    def reset(self) -> None:
        """Forget the log, messages, calls, violations and fault counters (not behaviours)."""
        self._ctx.reset()

    async def drop_pending(self) -> None:
        """Cancel every scheduled recipient action and callback: between two experiments on
        one simulator, so late replies to the first never reach the second."""
        await self._ctx.scheduler.close()

    @property
    def smtp_ca_pem(self) -> bytes | None:
        """PEM of the CA that signed the SMTP server's certificate (None without STARTTLS)."""
        return self._certificates.ca_pem if self._certificates else None

    def smtp_client_context(self) -> ssl.SSLContext:
        """An SSL context trusting the SMTP server's certificate, e.g. for aiosmtplib."""
        if self._certificates is None:
            raise RuntimeError("the simulator was created without smtp_starttls")
        return self._certificates.client_context()


class SimulatorThread:
    """Runs a CarrierSimulator's event loop in a background thread, for synchronous code.

    with SimulatorThread(sim) as s:   # blocks until the servers listen
        s.api_url, s.smtp_port, s.sim.log
        s.wait_idle(10)               # blocks
    """

    def __init__(self, sim: CarrierSimulator, *, timeout: float = 30.0) -> None:
        self.sim = sim
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SimulatorThread:
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=loop.run_forever, name="carrier-simulator", daemon=True
        )
        self._thread.start()
        try:
            self.run(self.sim.start())
        except BaseException:
            self._shutdown_loop()
            raise
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        try:
            self.run(self.sim.stop())
        finally:
            self._shutdown_loop()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the simulator's loop and wait for its result."""
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("simulator thread not started")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(self.timeout if timeout is None else timeout)

    def wait_idle(self, timeout: float = 30.0) -> None:
        self.run(self.sim.wait_idle(timeout), timeout + 5)

    @property
    def api_url(self) -> str:
        return self.sim.api_url

    @property
    def smtp_port(self) -> int:
        return self.sim.smtp_port

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _shutdown_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(self.timeout)
        loop.close()


__all__ = ["CarrierSimulator", "SimulatorThread"]
