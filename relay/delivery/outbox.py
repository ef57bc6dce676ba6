"""Transactional outbox: a task is published only after the work it starts is committed.

Services add an OutboxMessage in their transaction; after commit the caller runs
`publish_pending`, and the sweeper runs it again for rows that were committed but never
published (broker down, process died between commit and publish). Publishing twice is
harmless: every task is idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from relay.models import OutboxMessage

log = logging.getLogger(__name__)

Publisher = Callable[[str, dict[str, Any]], None]

# The task queues: real alerts are always served before exercises and tests (workers.app).
QUEUES = ("alerts", "exercises")


def queue_for(status: str) -> str:
    """The queue for an alert of this CAP status."""
    return QUEUES[0] if status == "Actual" else QUEUES[1]


def add(session: Session, topic: str, **payload: Any) -> OutboxMessage:
    message = OutboxMessage(topic=topic, payload=payload)
    session.add(message)
    return message


def publish_pending(
    sessions: sessionmaker[Session],
    publish: Publisher,
    *,
    older_than: timedelta = timedelta(0),
    page: int = 500,
) -> int:
    """Publish every unpublished row (oldest first, a page at a time); return how many went
    out. A publish error leaves the row for the next sweep and stops this one (the broker is
    probably down). All, not one page: a 100,000-recipient alert queues 1,000 batches at once,
    and waiting for the sweeper to take them 500 per tick would idle the workers."""
    cutoff = datetime.now(UTC) - older_than
    sent, after = 0, 0
    while True:
        with sessions() as session:
            rows = session.execute(
                select(OutboxMessage.id, OutboxMessage.topic, OutboxMessage.payload)
                .where(
                    OutboxMessage.published_at.is_(None),
                    OutboxMessage.created_at <= cutoff,
                    OutboxMessage.id > after,
                )
                .order_by(OutboxMessage.id)
                .limit(page)
            ).all()
        for row_id, topic, payload in rows:
            try:
                publish(topic, payload)
            except Exception as exc:
                log.warning("outbox: publishing %s #%s failed (%s); will retry", topic, row_id, exc)
                with sessions.begin() as session:
                    session.execute(
                        update(OutboxMessage)
                        .where(OutboxMessage.id == row_id)
                        .values(attempts=OutboxMessage.attempts + 1)
                    )
                return sent
            with sessions.begin() as session:
                session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row_id)
                    .values(published_at=datetime.now(UTC), attempts=OutboxMessage.attempts + 1)
                )
            sent += 1
            after = row_id
        if len(rows) < page:
            return sent
