"""The provider's callbacks at their worst: repeated, out of order (delivered before sent,
completed before ringing), for SIDs we never sent, after the alert was closed. States only
move forward, every callback is answered 2xx and stored as received, unknown ones are logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from relay.alerts.issuing import IssueRequest, issue_alert
from relay.alerts.lifecycle import cancel_alert
from relay.config import Settings
from relay.db import transaction
from relay.directory.audience import parse_audience
from relay.directory.csv_format import parse_directory
from relay.directory.store import apply_directory
from relay.drills.service import close_due
from relay.models import Alert, Delivery, DeliveryEvent, OutboxMessage, Recipient
from relay.web.app import create_app
from tests.test_webhooks import CSV, SID, signed, webhook_settings

SMS_SID = "SM" + "5" * 32
CALL_SID = "CA" + "6" * 32


@pytest.fixture
def relay(db_url: str) -> Iterator[tuple[TestClient, Settings]]:
    settings = webhook_settings(db_url)
    with transaction(db_url) as session:
        apply_directory(session, parse_directory(CSV), actor="test")
    with TestClient(create_app(settings), base_url="http://internal:8000") as client:
        yield client, settings


def _sent(db_url: str, settings: Settings, channel: str, provider_id: str, **kw: object) -> int:
    """Issue a one-recipient alert and mark its delivery as accepted by the provider, as the
    send task does; return the delivery id."""
    with transaction(db_url) as session:
        alert = issue_alert(
            session,
            settings,
            IssueRequest(
                template="test", audience=parse_audience("all"), channels=(channel,),
                mode="blast", status="Test", ack_within=timedelta(minutes=30), **kw,  # type: ignore[arg-type]
            ),
        )  # fmt: skip
        delivery = session.scalars(select(Delivery).where(Delivery.alert_id == alert.id)).one()
        delivery.state, delivery.provider_id = "accepted", provider_id
        return delivery.id


def _post(client: TestClient, path: str, params: dict[str, str]) -> int:
    return client.post(path, data=params, headers=signed(path, params)).status_code


def _delivery(db_url: str, delivery_id: int) -> Delivery:
    with transaction(db_url) as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        return delivery


def _events(db_url: str) -> list[tuple[int | None, str]]:
    with transaction(db_url) as session:
        return [
            (e.delivery_id, e.status)
            for e in session.scalars(select(DeliveryEvent).order_by(DeliveryEvent.id))
        ]


def test_sms_callbacks_repeated_and_reordered_only_move_forward(relay, db_url) -> None:
    client, settings = relay
    delivery_id = _sent(db_url, settings, "sms", SMS_SID)
    path = f"/webhooks/twilio/status?d={delivery_id}"
    seen = []
    for status in ("delivered", "delivered", "sent", "queued", "undelivered", "sent"):
        params = {"MessageSid": SMS_SID, "AccountSid": SID, "MessageStatus": status}
        assert _post(client, path, params) == 204
        seen.append(_delivery(db_url, delivery_id).state)
    assert seen == ["delivered"] * 6  # delivered first, and nothing later moved it back
    delivery = _delivery(db_url, delivery_id)
    assert delivery.delivered_at is not None and delivery.finished_at is not None
    assert delivery.error_code is None  # the late "undelivered" left no mark
    # Every callback is on record exactly as received, repeats included.
    assert [s for _, s in _events(db_url)] == [
        "delivered", "delivered", "sent", "queued", "undelivered", "sent"
    ]  # fmt: skip


def test_call_completed_before_ringing_stays_completed_and_reached(relay, db_url) -> None:
    client, settings = relay
    delivery_id = _sent(db_url, settings, "voice", CALL_SID)
    path = f"/webhooks/twilio/voice/status?d={delivery_id}"
    for status, answered_by in [
        ("completed", "human"),
        ("in-progress", "human"),
        ("ringing", None),
        ("initiated", None),
        ("no-answer", None),
        ("completed", "human"),
    ]:
        params = {"CallSid": CALL_SID, "AccountSid": SID, "CallStatus": status}
        if answered_by:
            params["AnsweredBy"] = answered_by
        assert _post(client, path, params) == 204
        assert _delivery(db_url, delivery_id).state == "completed"
    delivery = _delivery(db_url, delivery_id)
    assert delivery.reached_at is not None
    with transaction(db_url) as session:
        recipient = session.get(Recipient, delivery.recipient_id)
        assert recipient is not None and recipient.reached_at is not None


def test_unknown_sids_get_2xx_are_stored_and_logged(relay, db_url, caplog) -> None:
    client, settings = relay
    delivery_id = _sent(db_url, settings, "sms", SMS_SID)
    caplog.set_level(logging.INFO, logger="relay.web.twilio_webhooks")
    unknown_sms = {"MessageSid": "SM" + "7" * 32, "AccountSid": SID, "MessageStatus": "delivered"}
    unknown_call = {"CallSid": "CA" + "8" * 32, "AccountSid": SID, "CallStatus": "completed"}
    assert _post(client, "/webhooks/twilio/status", unknown_sms) == 204
    assert _post(client, "/webhooks/twilio/voice/status", unknown_call) == 204
    # A delivery id that exists but belongs to another message is not trusted.
    assert _post(client, f"/webhooks/twilio/status?d={delivery_id}", unknown_sms) == 204
    assert _post(client, "/webhooks/twilio/status?d=987654", unknown_sms) == 204
    assert _delivery(db_url, delivery_id).state == "accepted"
    assert _events(db_url) == [(None, "delivered"), (None, "completed")] + [(None, "delivered")] * 2
    logged = [r.getMessage() for r in caplog.records if "unknown" in r.getMessage()]
    assert len(logged) == 4
    assert any("SM" + "7" * 32 in m for m in logged) and any("CA" + "8" * 32 in m for m in logged)


def test_callbacks_after_the_alert_was_cancelled_or_closed(relay, db_url) -> None:
    client, settings = relay
    cancelled_id = _sent(db_url, settings, "sms", SMS_SID)
    closed_id = _sent(db_url, settings, "sms", "SM" + "9" * 32)
    with transaction(db_url) as session:
        alert_ids = {d.alert_id for d in session.scalars(select(Delivery))}
        cancelled_alert = session.get(Delivery, cancelled_id).alert_id  # type: ignore[union-attr]
        cancel_alert(session, settings, cancelled_alert, actor="test")
        closed_alert = next(a for a in alert_ids if a != cancelled_alert)
        session.get(Alert, closed_alert).state = "closed"  # type: ignore[union-attr]
        session.get(Alert, closed_alert).closed_at = datetime.now(UTC)  # type: ignore[union-attr]

    def snapshot() -> tuple[object, ...]:
        with transaction(db_url) as session:
            return (
                session.scalar(select(func.count()).select_from(Delivery)),
                session.scalar(select(func.count()).select_from(OutboxMessage)),
                session.scalar(select(func.count()).select_from(Alert)),
                tuple(session.scalars(select(Alert.state).order_by(Alert.id))),
            )

    before = snapshot()
    for delivery_id, sid in ((cancelled_id, SMS_SID), (closed_id, "SM" + "9" * 32)):
        path = f"/webhooks/twilio/status?d={delivery_id}"
        for status in ("delivered", "undelivered"):
            params = {"MessageSid": sid, "AccountSid": SID, "MessageStatus": status}
            assert _post(client, path, params) == 204
        assert _delivery(db_url, delivery_id).state == "delivered"  # the truth is still kept
    with transaction(db_url) as session:
        close_due(session)
    # Nothing new was sent or queued, and the alerts stay closed.
    assert snapshot() == before
