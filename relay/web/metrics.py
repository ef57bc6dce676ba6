"""`/metrics` in Prometheus text format: what the ward's IT staff alert on.

Gauges and the send-latency histogram are counted from the database at scrape time (every
process sees the same figures); queue depths are read from the broker, rate-limiter waits from
the Redis hash every worker adds to; webhook rejections are counted in this process. A source
that does not answer leaves its series out rather than failing the scrape.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from relay.config import Settings
from relay.db import session_factory
from relay.delivery.queue_depth import queue_depths
from relay.delivery.ratelimit import WAIT_STATS_KEY
from relay.jma.feed import MAX_ATTEMPTS, feed_health
from relay.models import (
    Acknowledgement,
    Alert,
    Delivery,
    DrillRun,
    JmaEntry,
    OutboxMessage,
    Recipient,
)

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)
WEBHOOK_REJECTIONS: Counter[str] = Counter()
# Seconds from an alert's issue (or a later escalation step's due time) to the provider's
# acceptance of the request.
LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"')


def _family(
    name: str, kind: str, help_text: str, rows: list[tuple[dict[str, object], float]]
) -> str:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in rows:
        inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{inner}}} {value}" if inner else f"{name} {value}")
    return "\n".join(lines)


def _seconds_to_send(session: Session) -> ColumnElement[Any]:
    start = func.coalesce(Delivery.due_at, Alert.sent_at)
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(Delivery.sent_at) - func.julianday(start)) * 86400.0
    return func.extract("epoch", Delivery.sent_at - start)


def _send_latency(session: Session) -> list[str]:
    seconds = _seconds_to_send(session)
    columns = [func.sum(case((seconds <= le, 1), else_=0)) for le in LATENCY_BUCKETS]
    rows = session.execute(
        select(Delivery.channel, *columns, func.coalesce(func.sum(seconds), 0), func.count())
        .join(Alert, Alert.id == Delivery.alert_id)
        .where(Delivery.sent_at.is_not(None))
        .group_by(Delivery.channel)
    ).all()
    name = "relay_send_latency_seconds"
    lines = [
        f"# HELP {name} From issue (or escalation step) to the provider accepting the request.",
        f"# TYPE {name} histogram",
    ]
    for channel, *counts in rows:
        *buckets, total, count = counts
        for le, n in zip(LATENCY_BUCKETS, buckets, strict=True):
            lines.append(f'{name}_bucket{{channel="{channel}",le="{le}"}} {int(n or 0)}')
        lines.append(f'{name}_bucket{{channel="{channel}",le="+Inf"}} {count}')
        lines.append(f'{name}_sum{{channel="{channel}"}} {float(total):.3f}')
        lines.append(f'{name}_count{{channel="{channel}"}} {count}')
    return lines


def _jma_families(
    session: Session, settings: Settings, now: datetime, up_since: datetime | None
) -> list[str]:
    """JMA feeds (only when configured): seconds since each feed's last good read (left out
    until its first), failed reads in a row, stale by relay.jma.feed's rule (the alert's
    series), and documents still to fetch or given up."""
    if not settings.jma_feeds:
        return []
    health = feed_health(session, settings, now, up_since)
    waiting = session.execute(
        select(JmaEntry.attempts, func.count())
        .where(JmaEntry.fetched_at.is_(None), JmaEntry.feed_url.in_(settings.jma_feeds))
        .group_by(JmaEntry.attempts)
    ).all()
    documents = {"pending": 0, "given_up": 0}
    for attempts, n in waiting:
        documents["given_up" if attempts >= MAX_ATTEMPTS else "pending"] += n
    return [
        _family(
            "relay_jma_feed_last_ok_seconds",
            "gauge",
            "Seconds since the JMA feed was last read (200 or 304); absent until its first.",
            [
                ({"feed": h.url}, round((now - h.ok_at).total_seconds(), 1))
                for h in health
                if h.ok_at
            ],
        ),
        _family(
            "relay_jma_feed_failures",
            "gauge",
            "Failed reads of the JMA feed in a row.",
            [({"feed": h.url}, h.failures) for h in health],
        ),
        _family(
            "relay_jma_feed_stale",
            "gauge",
            "1 when the JMA feed has not been read for 3 poll intervals (RUNBOOK: JMA feed stale).",
            [({"feed": h.url}, int(h.stale)) for h in health],
        ),
        _family(
            "relay_jma_documents",
            "gauge",
            "JMA documents not read: pending (retried at the next poll) or given_up.",
            [({"state": state}, n) for state, n in documents.items()],
        ),
    ]


def _broker_families(settings: Settings) -> list[str]:
    families = []
    try:
        depths = queue_depths(settings)
        families.append(
            _family(
                "relay_queue_depth",
                "gauge",
                "Tasks waiting on each queue (alerts are served before exercises).",
                [({"queue": q}, n) for q, n in depths.items()],
            )
        )
    except Exception as exc:  # the broker is down: that shows in /readyz and the runbook
        log.warning("metrics: queue depth unavailable (%s)", type(exc).__name__)
    if settings.redis_url:
        try:
            import redis

            client = redis.Redis.from_url(
                settings.redis_url, socket_timeout=2, decode_responses=True
            )
            stats = {
                str(k): float(v)
                for k, v in client.hgetall(settings.broker_prefix + WAIT_STATS_KEY).items()
            }
            client.close()
            rows = sorted({key.rsplit(":", 1)[0] for key in stats})
            families.append(
                _family(
                    "relay_rate_limit_waits_total",
                    "counter",
                    "Times a send waited for the provider's rate limit, by channel.",
                    [({"channel": ch}, int(stats.get(f"{ch}:waits", 0))) for ch in rows],
                )
            )
            families.append(
                _family(
                    "relay_rate_limit_wait_seconds_total",
                    "counter",
                    "Seconds sends waited for the provider's rate limit, by channel.",
                    [({"channel": ch}, round(stats.get(f"{ch}:seconds", 0.0), 3)) for ch in rows],
                )
            )
        except Exception as exc:
            log.warning("metrics: rate-limiter waits unavailable (%s)", type(exc).__name__)
    return families


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> str:
    now = datetime.now(UTC)
    settings: Settings = request.app.state.settings
    with session_factory(settings.database_url)() as session:
        latency = _send_latency(session)
        deliveries = session.execute(
            select(Delivery.channel, Delivery.state, func.count()).group_by(
                Delivery.channel, Delivery.state
            )
        ).all()
        acks = session.execute(
            select(Acknowledgement.method, func.count()).group_by(Acknowledgement.method)
        ).all()
        alerts = session.execute(
            select(Alert.status, Alert.state, func.count()).group_by(Alert.status, Alert.state)
        ).all()
        runs = session.execute(select(DrillRun.state, func.count()).group_by(DrillRun.state)).all()
        outbox = (
            session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.published_at.is_(None))
            )
            or 0
        )
        due = (
            session.scalar(
                select(func.count()).select_from(Recipient).where(Recipient.next_action_at <= now)
            )
            or 0
        )
        jma = _jma_families(session, settings, now, getattr(request.app.state, "started_at", None))
    families = [
        _family(
            "relay_deliveries",
            "gauge",
            "Deliveries by channel and state.",
            [({"channel": c, "state": s}, n) for c, s, n in deliveries],
        ),
        _family(
            "relay_acknowledgements",
            "gauge",
            "Acknowledgements by method.",
            [({"method": m}, n) for m, n in acks],
        ),
        _family(
            "relay_alerts",
            "gauge",
            "Alerts by CAP status and workflow state.",
            [({"status": st, "state": s}, n) for st, s, n in alerts],
        ),
        _family(
            "relay_drill_runs",
            "gauge",
            "Drill runs by state (missed ones included).",
            [({"state": s}, n) for s, n in runs],
        ),
        _family(
            "relay_outbox_unpublished",
            "gauge",
            "Committed work not yet on the queue.",
            [({}, outbox)],
        ),
        _family(
            "relay_escalations_due", "gauge", "Recipients whose next step is due now.", [({}, due)]
        ),
        _family(
            "relay_webhook_rejections_total",
            "counter",
            "Webhooks refused (bad signature).",
            [({"path": p}, n) for p, n in sorted(WEBHOOK_REJECTIONS.items())],
        ),
        "\n".join(latency),
        *jma,
        *_broker_families(settings),
    ]
    return "\n".join(families) + "\n"
