"""The Celery app: broker, queues, delivery semantics.

Two queues: `alerts` (real) is always served before `exercises` (drills and tests): the broker
polls queues in the listed order rather than round-robin (Redis: `queue_order_strategy`; the
embedded SQLite broker: workers/embedded_broker.py), and each worker process reserves one task
at a time, so a real alert waits behind at most the batch a process is already sending.
"""

from __future__ import annotations

import logging

from celery import Celery
from celery.signals import setup_logging, worker_process_init
from kombu.entity import Queue

from relay.config import Settings, load_settings
from relay.db import engine_for
from relay.delivery.outbox import QUEUES
from relay.delivery.runtime import reset_runtime
from relay.logs import configure as configure_logging
from workers import embedded_broker

_SQLA = "sqla+"


def broker_url(settings: Settings) -> str:
    """The URL Celery connects to: for a SQLite broker, without kombu's `sqla+` prefix, which
    would pick kombu's own transport over `broker_transport`'s (embedded_broker.Transport)."""
    if settings.embedded_broker:
        # kombu's SQLAlchemy transport on a SQLite file: durable, no server; one worker only
        # (FINDINGS: embedded mode). Never the filesystem transport: it loses messages.
        settings.workdir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{settings.embedded_broker_path.resolve()}"
    if settings.broker_url.startswith(_SQLA):
        return settings.broker_url[len(_SQLA) :]
    return settings.broker_url


def broker_transport(settings: Settings) -> str | None:
    """The transport class for a SQLite broker; None: kombu's, from the URL's scheme."""
    if settings.embedded_broker or settings.broker_url.startswith(_SQLA):
        return embedded_broker.TRANSPORT
    return None


def transport_options(settings: Settings) -> dict[str, object]:
    """Options for the broker's transport, and only those it understands: kombu's SQLAlchemy
    transport hands every option to create_engine(), which refuses Redis's (the embedded
    worker crashed at start with a TypeError and nothing was ever sent)."""
    if not settings.broker_url.startswith("redis"):
        # SQLite: queue order and polling interval are set in embedded_broker.Transport, not
        # here. It has no visibility timeout (a message is hidden once delivered; a worker
        # killed outright loses its reserved task, and recovery of its sends comes from the
        # database's claims). Memory (the demo, one process): nothing to set.
        return {}
    return {
        "queue_order_strategy": "priority",
        # Tasks are bounded (a batch is a few minutes at most at the slowest provider
        # rate); a worker killed outright has its tasks restored after this long.
        "visibility_timeout": settings.visibility_timeout_s,
        "unacked_restore_interval": 2,
        "unacked_restore_throttle": 1,
        "max_connections": 50,
        **({"global_keyprefix": settings.broker_prefix} if settings.broker_prefix else {}),
    }


def make_app() -> Celery:
    settings = load_settings()
    app = Celery("relay", broker=broker_url(settings), include=["workers.tasks"])
    app.conf.update(
        broker_transport=broker_transport(settings),
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue="alerts",
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        # Tasks are idempotent (claims in the database), so redelivery is safe and wanted.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options(settings),
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


app = make_app()


def start_worker(argv: list[str]) -> int:
    """`celery ARGV` (a `worker` command) on this app; its exit code. Celery's app.start()
    drops it (click returns the code when not standalone, and start() ignores the return), so
    a worker that died at start ("Unrecoverable error") exited 0 and systemd or compose never
    knew."""
    from celery.bin.celery import celery as command
    from click.exceptions import Exit

    command.params[0].default = app  # as app.start() passes the app
    try:
        code = command.main(args=argv, standalone_mode=False)
    except Exit as exc:  # click before 8.0 raised it instead of returning
        code = exc.exit_code
    finally:
        command.params[0].default = None
    return code if isinstance(code, int) else 0


@setup_logging.connect
def _relay_logging(loglevel: object = None, **_: object) -> None:
    # Connected, this signal replaces Celery's own logging set-up: the worker logs JSON lines
    # through the same masking formatter as every other relay process.
    settings = load_settings()
    if isinstance(loglevel, int):  # Celery passes the --loglevel option as a number
        loglevel = logging.getLevelName(loglevel)
    level = loglevel if isinstance(loglevel, str) else settings.log_level
    configure_logging(settings.log_format, level.upper())


@worker_process_init.connect
def _fresh_connections(**_: object) -> None:
    # A forked pool process must not share the parent's database connections or event loop.
    engine_for.cache_clear()
    reset_runtime()
