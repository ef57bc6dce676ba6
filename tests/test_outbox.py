"""The transactional outbox: everything committed is published, in order, a page at a time;
a broker error stops the sweep and leaves the rest for the next one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from relay.db import session_factory, transaction
from relay.delivery import outbox
from relay.models import OutboxMessage


def _add(db_url: str, n: int) -> None:
    with transaction(db_url) as session:
        for i in range(n):
            outbox.add(session, "send_batch", channel="sms", ids=[i], queue="alerts")


def _unpublished(db_url: str) -> int:
    with transaction(db_url) as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.published_at.is_(None))
            )
            or 0
        )


def test_every_row_is_published_in_order_across_pages(db_url: str) -> None:
    _add(db_url, 23)
    seen: list[Any] = []
    sent = outbox.publish_pending(
        session_factory(db_url), lambda topic, payload: seen.append(payload["ids"][0]), page=5
    )
    assert sent == 23 and seen == list(range(23)) and _unpublished(db_url) == 0
    assert outbox.publish_pending(session_factory(db_url), seen.append, page=5) == 0


def test_a_broker_error_stops_the_sweep_and_keeps_the_rest(db_url: str) -> None:
    _add(db_url, 12)
    seen: list[int] = []

    def flaky(topic: str, payload: dict[str, Any]) -> None:
        if payload["ids"][0] == 7:
            raise ConnectionError("broker down")
        seen.append(payload["ids"][0])

    assert outbox.publish_pending(session_factory(db_url), flaky, page=5) == 7
    assert seen == list(range(7)) and _unpublished(db_url) == 5
    retried: list[int] = []
    sweep = outbox.publish_pending(
        session_factory(db_url), lambda t, p: retried.append(p["ids"][0]), page=5
    )
    assert sweep == 5 and retried == list(range(7, 12)) and _unpublished(db_url) == 0
