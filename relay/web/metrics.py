"""`/metrics` in Prometheus text format: what the ward's IT staff alert on.

Gauges are counted from the database at scrape time (every process sees the same figures);
webhook rejections are counted in this process.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import func, select

from relay.db import session_factory
from relay.models import Acknowledgement, Alert, Delivery, DrillRun, OutboxMessage, Recipient

router = APIRouter(include_in_schema=False)
WEBHOOK_REJECTIONS: Counter[str] = Counter()


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


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> str:
    now = datetime.now(UTC)
    with session_factory(request.app.state.settings.database_url)() as session:
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
    ]
    return "\n".join(families) + "\n"
