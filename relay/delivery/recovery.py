"""Work the task queue lost, found again in the database.

The database is the record of what must still be sent; the broker only carries tasks. Two
ways a recipient could otherwise be left out for good:

- Tasks lost with the broker (Redis restarted without persistence, or a task that could not
  schedule its retry while Redis was down): deliveries stay `queued` and no task will ever
  claim them. When the broker holds no task at all, every queued delivery is queued again
  (`requeue_orphans`); a send task only sends rows it can still claim, so a needless requeue
  costs a task, never a message. Drill runs still `pending` are republished the same way.
- Ambiguous sends (a timeout or reset after the request left): `unknown`, never resent at
  once, because the provider may have the message; the status callback reconciles it. When no
  callback has come after `window`, the provider almost certainly never took it (a reset
  before the request was read), so it is sent again (`resend_unconfirmed`). This is the one
  place a recipient may get a message twice: when the provider took it and its callback is
  later than `window`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from relay.delivery import outbox
from relay.delivery.dispatch import queue_batches
from relay.delivery.states import QUEUED, UNKNOWN
from relay.models import Alert, Delivery, DrillRun, Recipient

log = logging.getLogger(__name__)


def _publish_sends(session: Session, rows: list[tuple[int, int, str]]) -> None:
    """Outbox send batches for (delivery id, alert id, channel) rows, in coverage order."""
    by_alert: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for delivery_id, alert_id, channel in rows:
        by_alert[alert_id][channel].append(delivery_id)
    for alert_id, channels in by_alert.items():
        status = session.scalar(select(Alert.status).where(Alert.id == alert_id)) or ""
        queue_batches(session, alert_id, outbox.queue_for(status), channels)


def requeue_orphans(session: Session) -> int:
    """Publish every queued delivery and pending drill run again. Call it only when the broker
    holds no task (see module doc); returns how many deliveries and alerts still being planned
    were requeued."""
    rows = session.execute(
        select(Delivery.id, Delivery.alert_id, Delivery.channel)
        .where(Delivery.state == QUEUED)
        .order_by(Delivery.alert_id, Delivery.position)
    ).all()
    _publish_sends(session, [(r[0], r[1], r[2]) for r in rows])
    runs = list(session.scalars(select(DrillRun.id).where(DrillRun.state == "pending")))
    for run_id in runs:
        outbox.add(session, "run_drill", run_id=run_id, queue=outbox.queue_for("Exercise"))
    # Alerts still being planned: the task for their next slice was lost with the broker.
    planning = session.execute(
        select(Alert.id, Alert.status, Alert.planned_recipients).where(Alert.state == "dispatching")
    ).all()
    for alert_id, status, start in planning:
        outbox.add(
            session, "dispatch_alert", alert_id=alert_id, start=start,
            queue=outbox.queue_for(status),
        )  # fmt: skip
    if rows or runs or planning:
        log.warning(
            "broker holds no task: %d queued deliveries, %d drill runs and %d alerts still "
            "being planned published again",
            len(rows),
            len(runs),
            len(planning),
        )
    return len(rows) + len(planning)


def resend_unconfirmed(session: Session, window: timedelta, now: datetime | None = None) -> int:
    """Ambiguous sends with no word from the provider after `window` go back to the queue
    (unless the recipient has acknowledged meanwhile); returns how many."""
    now = now or datetime.now(UTC)
    acknowledged = select(Recipient.id).where(Recipient.acknowledged_at.is_not(None))
    rows = session.execute(
        update(Delivery)
        .where(
            Delivery.state == UNKNOWN,
            Delivery.provider_id.is_(None),
            Delivery.claimed_at < now - window,
            Delivery.recipient_id.not_in(acknowledged),
        )
        .values(state=QUEUED)
        .returning(Delivery.id, Delivery.alert_id, Delivery.channel)
        .execution_options(synchronize_session=False)
    ).all()
    _publish_sends(session, [(r[0], r[1], r[2]) for r in rows])
    if rows:
        log.warning("%d ambiguous sends unconfirmed after %s: sending again", len(rows), window)
    return len(rows)
