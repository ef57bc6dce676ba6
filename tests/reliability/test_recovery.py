"""relay.delivery.recovery on both databases: what is sent again after an ambiguous send, what is
republished when the broker lost its tasks, and what is left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from relay.alerts.issuing import IssueRequest, issue_alert
from relay.config import load_settings
from relay.db import transaction
from relay.delivery import recovery
from relay.directory.audience import parse_audience
from relay.directory.csv_format import parse_directory
from relay.directory.store import apply_directory
from relay.drills import service
from relay.models import Delivery, OutboxMessage, Recipient
from tests.test_webhooks import CSV
from workers.broker_watch import LostTaskWatch

TWO = CSV + "a2,六浦自治会,association,六浦,,,佐藤 花子,会長,1,090-9999-0002,,,ja\n"


def _alert(db_url: str) -> list[int]:
    settings = load_settings({"RELAY_DATABASE_URL": db_url, "RELAY_SECRET_KEY": "k" * 20})
    with transaction(db_url) as session:
        apply_directory(session, parse_directory(TWO), actor="test")
        alert = issue_alert(
            session,
            settings,
            IssueRequest(
                template="test", audience=parse_audience("all"), channels=("sms",),
                mode="blast", status="Test",
            ),
        )  # fmt: skip
        session.query(OutboxMessage).delete()
        return sorted(session.scalars(select(Delivery.id).where(Delivery.alert_id == alert.id)))


def _sends(db_url: str) -> list[list[int]]:
    with transaction(db_url) as session:
        return [
            m.payload["ids"]
            for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
            if m.topic == "send_batch"
        ]


def test_unconfirmed_ambiguous_sends_go_again_after_the_window(db_url: str) -> None:
    first, second = _alert(db_url)
    now = datetime.now(UTC)
    with transaction(db_url) as session:
        for delivery in session.scalars(select(Delivery)):
            delivery.state, delivery.claimed_at = "unknown", now - timedelta(seconds=30)
        session.get(Delivery, second).provider_id = "SM" + "1" * 32  # type: ignore[union-attr]
    with transaction(db_url) as session:  # within the window: nothing yet
        assert recovery.resend_unconfirmed(session, timedelta(seconds=60), now) == 0
    with transaction(db_url) as session:
        assert recovery.resend_unconfirmed(session, timedelta(seconds=20), now) == 1
    with transaction(db_url) as session:
        states = {i: s for i, s in session.execute(select(Delivery.id, Delivery.state))}
    # The one the provider confirmed (a callback gave its SID) is never sent again.
    assert states == {first: "queued", second: "unknown"} and _sends(db_url) == [[first]]


def test_an_acknowledged_recipient_is_not_sent_again(db_url: str) -> None:
    first, second = _alert(db_url)
    now = datetime.now(UTC)
    with transaction(db_url) as session:
        for delivery in session.scalars(select(Delivery)):
            delivery.state, delivery.claimed_at = "unknown", now - timedelta(minutes=5)
        recipient = session.get(Recipient, session.get(Delivery, first).recipient_id)  # type: ignore[union-attr]
        recipient.acknowledged_at = now  # type: ignore[union-attr]
    with transaction(db_url) as session:
        assert recovery.resend_unconfirmed(session, timedelta(seconds=60), now) == 1
    assert _sends(db_url) == [[second]]


def test_orphans_queued_deliveries_and_pending_drill_runs_are_published_again(db_url) -> None:
    ids = _alert(db_url)
    with transaction(db_url) as session:
        service.save_schedule(session, service.ScheduleSpec("d", "0 10 * * 1"), actor="test")
        run = service.run_now(session, "d", actor="test")
        session.query(OutboxMessage).delete()
        run_id = run.id
    with transaction(db_url) as session:
        assert recovery.requeue_orphans(session) == len(ids)
    with transaction(db_url) as session:
        topics = [(m.topic, m.payload) for m in session.scalars(select(OutboxMessage))]
    assert ("run_drill", {"run_id": run_id, "queue": "exercises"}) in topics
    assert _sends(db_url) == [ids]


def test_lost_tasks_are_declared_only_after_two_empty_looks() -> None:
    watch = LostTaskWatch(settle=5)
    assert not watch.lost(True, now=0)  # first empty look
    assert not watch.lost(True, now=3)  # too soon: a worker may be taking a task
    assert not watch.lost(False, now=4)  # work seen: start again
    assert not watch.lost(True, now=5)
    assert not watch.lost(None, now=20)  # cannot tell (Redis down): never act
    assert not watch.lost(True, now=21)
    assert watch.lost(True, now=27)
