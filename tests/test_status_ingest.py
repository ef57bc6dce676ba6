"""Status callbacks under load are stored by group commit (relay/web/status_ingest.py): every
callback Twilio is told 204 about is stored exactly once, states still only move forward, and
one event the database refuses fails alone, not the batch it came in."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from relay.db import engine_for, is_sqlite, transaction
from relay.models import Delivery, DeliveryEvent
from relay.web import status_ingest
from relay.web.app import create_app
from tests.harness import wait_until
from tests.test_webhooks import CSV, SID, issue_to_everyone, signed, webhook_settings

PEOPLE = 100
STATUS_PATH = "/webhooks/twilio/status"


def _directory(people: int) -> str:
    header = CSV.splitlines()[0]
    rows = [
        f"o{i},班{i},association,西柴,,,住民 {i},会長,1,090-1000-{i:04d},,,ja"
        for i in range(people)
    ]
    return "\n".join([header, *rows]) + "\n"


@pytest.fixture
def relay(db_url: str) -> Iterator[tuple[TestClient, dict[int, str]]]:
    """The app, and one SMS delivery per person accepted by Twilio: {delivery id: its SID}."""
    settings = webhook_settings(db_url)
    alert_id, _ = issue_to_everyone(db_url, settings, _directory(PEOPLE))
    with transaction(db_url) as session:
        sids = {}
        for delivery in session.scalars(select(Delivery).where(Delivery.alert_id == alert_id)):
            delivery.state, delivery.provider_id = "accepted", f"SM{delivery.id:032d}"
            sids[delivery.id] = delivery.provider_id
    assert len(sids) == PEOPLE
    app = create_app(settings)
    # A failed callback must reach us as Twilio sees it: a 500, not an exception in the test.
    with TestClient(app, base_url="http://internal:8000", raise_server_exceptions=False) as client:
        yield client, sids


def _callback(client: TestClient, delivery_id: int, sid: str, status: str) -> int:
    path = f"{STATUS_PATH}?d={delivery_id}"
    params = {"MessageSid": sid, "AccountSid": SID, "MessageStatus": status}
    if status == "undelivered":
        params["ErrorCode"] = "30003"
    return client.post(path, data=params, headers=signed(path, params)).status_code


def _stored(db_url: str) -> Counter[tuple[int | None, str]]:
    with transaction(db_url) as session:
        return Counter(session.execute(select(DeliveryEvent.delivery_id, DeliveryEvent.status)))


def _all_answered(futures: list[Future[int]], seconds: float = 60) -> list[int]:
    deadline = time.monotonic() + seconds
    return [f.result(timeout=max(0.0, deadline - time.monotonic())) for f in futures]


def test_concurrent_callbacks_each_stored_once_and_states_only_move_forward(relay, db_url) -> None:
    client, sids = relay
    # A quarter of the messages fail; the rest are delivered. The first wave carries the final
    # word, the second a late "sent" and a repeat of the first: both must change nothing.
    final = {d: "undelivered" if d % 4 == 0 else "delivered" for d in sids}
    first = [(d, final[d]) for d in sids]
    second = [(d, s) for d in sids for s in ("sent", final[d])]
    answers = []
    with ThreadPoolExecutor(max_workers=30) as pool:
        for wave in (first, second):
            answers += _all_answered(
                [pool.submit(_callback, client, d, sids[d], s) for d, s in wave]
            )
    assert answers == [204] * 3 * PEOPLE
    assert _stored(db_url) == Counter((d, s) for d, s in first + second)
    with transaction(db_url) as session:
        deliveries = {d.id: d for d in session.scalars(select(Delivery))}
    assert {d: deliveries[d].state for d in sids} == final
    for delivery_id, state in final.items():
        delivery = deliveries[delivery_id]
        assert delivery.finished_at is not None
        if state == "delivered":
            assert delivery.delivered_at is not None and delivery.error_code is None
        else:
            assert delivery.delivered_at is None and delivery.error_code == "30003"


@contextmanager
def _writes_held(db_url: str) -> Iterator[None]:
    """Another transaction holds what the status writer needs to write: SQLite's one write
    lock, or PostgreSQL's deliveries table."""
    with engine_for(db_url).connect() as conn, conn.begin():  # BEGIN IMMEDIATE on SQLite
        if not is_sqlite(db_url):
            conn.execute(text("LOCK TABLE deliveries IN EXCLUSIVE MODE"))
        yield


REFUSED = "refuse-me"


def _refuse_a_status(db_url: str) -> None:
    """The database refuses to store an event with status REFUSED (a trigger), as it would
    refuse a row for any reason of its own."""
    if is_sqlite(db_url):
        ddl = [
            "CREATE TRIGGER refuse_status BEFORE INSERT ON delivery_events "
            f"WHEN NEW.status = '{REFUSED}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ]
    else:
        ddl = [
            "CREATE FUNCTION refuse_status() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.status = '{REFUSED}' THEN RAISE EXCEPTION 'refused'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_status BEFORE INSERT ON delivery_events "
            "FOR EACH ROW EXECUTE FUNCTION refuse_status()",
        ]
    with engine_for(db_url).begin() as conn:
        for statement in ddl:
            conn.execute(text(statement))


def test_an_event_the_database_refuses_fails_alone_not_its_batch(relay, db_url, caplog) -> None:
    client, sids = relay
    _refuse_a_status(db_url)
    caplog.set_level(logging.WARNING, logger=status_ingest.__name__)
    writer = status_ingest.writer(client.app)
    first, *batched = sids
    good, refused = batched[:20], batched[20]
    with ThreadPoolExecutor(max_workers=30) as pool, _writes_held(db_url):
        # The writer takes the first callback and waits for the lock; the others queue behind
        # it and go in together, the refused one among them.
        blocker = pool.submit(_callback, client, first, sids[first], "delivered")
        wait_until(lambda: writer.storing() == 1, 30, "the writer took no callback", 0.01)
        futures = [pool.submit(_callback, client, d, sids[d], "delivered") for d in good]
        futures.append(pool.submit(_callback, client, refused, sids[refused], REFUSED))
        wait_until(lambda: writer.queued() == len(futures), 30, "the callbacks did not queue", 0.01)
    answers = _all_answered([blocker, *futures])
    assert answers == [204] * (1 + len(good)) + [500]
    assert f"status batch of {len(futures)} failed" in caplog.text
    assert _stored(db_url) == Counter((d, "delivered") for d in [first, *good])
    with transaction(db_url) as session:
        states = dict(session.execute(select(Delivery.id, Delivery.state)).all())
    assert [states[d] for d in [first, *good]] == ["delivered"] * (1 + len(good))
    assert states[refused] == "accepted"
