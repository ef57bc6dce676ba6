"""Long-running processes: `relay serve`, `relay worker`."""

from __future__ import annotations

from typing import Annotated

import typer

from relay.cli.common import settings
from relay.cli.jma_cmd import check_rules
from relay.config import Settings, require_strong_secrets


def _production_settings() -> Settings:
    """The settings of a long-running process, which refuses known or short secrets unless it
    is reached on loopback only (relay/config.py require_strong_secrets)."""
    cfg = settings()
    require_strong_secrets(cfg)
    return cfg


def serve(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
) -> None:
    """The HTTP app: API, Twilio webhooks, acknowledgement links, console."""
    cfg = _production_settings()  # before the imports: workers.app creates the broker file
    from relay.logs import configure as configure_logging
    from relay.web import server
    from relay.web.app import create_app
    from workers import tasks  # noqa: F401  (entry point: registers the outbox publisher)

    configure_logging(cfg.log_format, cfg.log_level)
    # uvicorn, with request time limits
    server.run(create_app(cfg), host=host, port=port, trusted_proxies=cfg.trusted_proxies)


def worker(
    concurrency: Annotated[int, typer.Option(help="pool processes")] = 2,
    queues: Annotated[str, typer.Option(help="queues, served in this order")] = "alerts,exercises",
    loglevel: Annotated[str, typer.Option(help="log level")] = "INFO",
) -> None:
    """A Celery worker: dispatches and sends alerts."""
    cfg = _production_settings()  # fail fast on bad configuration, before Celery starts
    from relay.logs import configure as configure_logging
    from workers.app import start_worker

    # Before Celery starts, so its start-up warnings are JSON lines too.
    configure_logging(cfg.log_format, loglevel.upper())

    if cfg.embedded_broker and concurrency > 1:
        concurrency = 1  # the embedded SQLite broker takes exactly one consumer
    # -q: no start-up banner; the worker's output is JSON lines only (relay.logs).
    code = start_worker(
        [
            "-q",
            "worker",
            f"--concurrency={concurrency}",
            f"--queues={queues}",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )
    if code:  # e.g. an unrecoverable error at start (Celery logged it): not 0
        raise typer.Exit(code)


def scheduler(
    tick: Annotated[float, typer.Option(help="seconds between ticks")] = 2.0,
) -> None:
    """Drills, escalation timing, the outbox sweeper, JMA's feeds (one is enough; a second is
    harmless)."""
    cfg = _production_settings()
    check_rules(cfg)  # a typo in the trigger rules stops the start, not the first earthquake
    from workers.scheduler import run

    run(tick)


def simulator(
    ctx: typer.Context,
) -> None:
    """The carrier simulator (Twilio API + SMTP + simulated recipients) as its own process.
    Options are the simulator's own: `relay simulator --help`."""
    from simulator import main as simulator_main

    raise typer.Exit(simulator_main(ctx.args))
