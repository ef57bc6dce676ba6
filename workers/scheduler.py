"""`relay scheduler`: APScheduler drives the timing; the database decides what happens.

Interval jobs: the escalation tick, the reminders (issue 16), the outbox sweeper, the recovery
of stale claims, JMA's Atom feeds (when RELAY_JMA_FEEDS is set). Each job is safe to run in
several scheduler processes at once (claims in the database), so a second scheduler is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.orm import Session

from relay import clock
from relay.alerts import deadlines
from relay.config import load_settings
from relay.delivery import recovery
from relay.delivery.runtime import get_runtime
from relay.drills import service
from relay.jma.feed import poll_feeds
from relay.jma.ingest import ingest_document
from relay.logs import configure as configure_logging
from relay.replies import escalation, reminders
from workers import tasks  # noqa: F401  (registers the outbox publisher)
from workers.broker_watch import LostTaskWatch, broker_empty

log = logging.getLogger(__name__)

TICK_SECONDS = 2.0


def _in_transaction(step: Callable[[Session], int], name: str) -> Callable[[], None]:
    def job() -> None:
        runtime = get_runtime()
        try:
            with runtime.sessions.begin() as session:
                moved = step(session)
            if moved:
                log.info("%s: %d", name, moved)
            runtime.publish_outbox()
        except Exception:
            # A tick that fails (database failover, broker down) is retried by the next one.
            log.exception("%s failed; retrying at the next tick", name)

    return job


def _fire_drills(session: Session) -> int:
    return service.tick(session, clock.now(get_runtime().settings.clock_file))


def _deadline_summaries(session: Session) -> int:
    return deadlines.summarize_due(session, get_runtime().settings)


def _reminders(session: Session) -> int:
    return reminders.tick(session, get_runtime().settings)


def _recover_stale_claims(session: Session) -> int:
    lease = timedelta(seconds=get_runtime().settings.claim_lease_s)
    return escalation.recover_stale_claims(session, lease)


def sweep_outbox() -> None:
    try:
        get_runtime().publish_outbox(older_than_s=5.0)
    except Exception:
        log.exception("outbox sweep failed; retrying at the next tick")


def poll_jma_feeds() -> None:
    """JMA's Atom feeds (relay.jma.feed): new documents go to the ingest service, which may
    issue an automatic alert; the outbox is published at once so it dispatches now."""
    runtime = get_runtime()
    settings = runtime.settings
    try:
        handed = poll_feeds(
            runtime.sessions,
            settings,
            lambda session, data, source: ingest_document(session, settings, data, source),
        )
        if handed:
            log.info("JMA documents ingested: %d", handed)
        runtime.publish_outbox()
    except Exception:
        log.exception("JMA feed poll failed; retrying at the next one")


_lost_tasks = LostTaskWatch()


def recover_lost_work() -> None:
    """Sends the broker lost or the provider never confirmed go out again
    (relay.delivery.recovery)."""
    runtime = get_runtime()
    settings = runtime.settings
    try:
        # Twilio's status callbacks come within seconds; twice the claim lease is long enough
        # that a missing one means the provider never took the message.
        window = timedelta(seconds=2 * settings.claim_lease_s)
        with runtime.sessions.begin() as session:
            moved = recovery.resend_unconfirmed(session, window)
            if _lost_tasks.lost(broker_empty(settings)):
                moved += recovery.requeue_orphans(session)
        if moved:
            runtime.publish_outbox()
    except Exception:
        log.exception("recovering lost work failed; retrying at the next tick")


def add_jobs(scheduler: BaseScheduler, tick_seconds: float = TICK_SECONDS) -> BaseScheduler:
    """The periodic jobs, on a blocking scheduler (`relay scheduler`) or a background one
    (`relay demo`)."""
    common = {"trigger": "interval", "coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
    scheduler.add_job(
        _in_transaction(_fire_drills, "drills"), seconds=tick_seconds, id="drills", **common
    )
    scheduler.add_job(
        _in_transaction(_deadline_summaries, "deadline summaries"),
        seconds=tick_seconds,
        id="deadline-summaries",
        **common,
    )
    scheduler.add_job(
        _in_transaction(service.close_due, "drills closed"),
        seconds=tick_seconds,
        id="drill-deadlines",
        **common,
    )
    scheduler.add_job(
        _in_transaction(escalation.tick, "escalation"),
        seconds=tick_seconds,
        id="escalation",
        **common,
    )
    scheduler.add_job(
        _in_transaction(_reminders, "reminders"),
        seconds=tick_seconds,
        id="reminders",
        **common,
    )
    scheduler.add_job(
        _in_transaction(_recover_stale_claims, "stale claims"),
        seconds=max(tick_seconds, 10.0),
        id="stale-claims",
        **common,
    )
    scheduler.add_job(sweep_outbox, seconds=max(tick_seconds, 5.0), id="outbox", **common)
    scheduler.add_job(recover_lost_work, seconds=max(tick_seconds, 5.0), id="lost-work", **common)
    if get_runtime().settings.jma_feeds:
        # JMA asks for no more than one read a minute per feed (RELAY_JMA_POLL_INTERVAL).
        interval = get_runtime().settings.jma_poll_s
        scheduler.add_job(poll_jma_feeds, seconds=interval, id="jma-feeds", **common)
    return scheduler


def build_scheduler(tick_seconds: float = TICK_SECONDS) -> BaseScheduler:
    return add_jobs(BlockingScheduler(timezone="Asia/Tokyo"), tick_seconds)


def run(tick_seconds: float = TICK_SECONDS) -> None:
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    build_scheduler(tick_seconds).start()
