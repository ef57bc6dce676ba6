"""Webhooks at the trust boundary: a request Twilio did not sign changes nothing; a signed
one is stored once however often Twilio retries it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from relay.alerts.issuing import IssueRequest, issue_alert
from relay.config import Settings, load_settings
from relay.db import transaction
from relay.directory.audience import parse_audience
from relay.directory.csv_format import parse_directory
from relay.directory.store import apply_directory
from relay.models import Acknowledgement, Delivery, DeliveryEvent, InboundMessage
from relay.web.app import create_app

PUBLIC = "https://relay.example.jp"
SID = "AC" + "1" * 32
TOKEN = "current-token"
CSV = (
    "org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,priority,"
    "mobile,landline,email,language\n"
    "a1,西柴自治会,association,西柴,,,山田 一郎,会長,1,090-9999-0001,,a1@example.jp,ja\n"
)


SECRET_KEY = "webhook-test-secret-key"


def webhook_settings(db_url: str, tokens: str = TOKEN, secret: str = SECRET_KEY) -> Settings:
    """Settings as Twilio's webhooks meet them: our public URL, account, auth token(s)."""
    return load_settings(
        {
            "RELAY_DATABASE_URL": db_url,
            "RELAY_PUBLIC_URL": PUBLIC,
            "TWILIO_ACCOUNT_SID": SID,
            "TWILIO_AUTH_TOKEN": tokens,
            "RELAY_SECRET_KEY": secret,
        }
    )


def issue_to_everyone(
    db_url: str, settings: Settings, directory: str = CSV, **request: Any
) -> tuple[int, str]:
    """Load `directory`, issue an alert to everyone in it (a blast Test on SMS unless `request`
    says otherwise: IssueRequest's fields); its id and reference."""
    fields: dict[str, Any] = {
        "template": "test",
        "audience": parse_audience("all"),
        "channels": ("sms",),
        "mode": "blast",
        "status": "Test",
        "ack_within": timedelta(minutes=30),
        **request,
    }
    with transaction(db_url) as session:
        apply_directory(session, parse_directory(directory), actor="test")
        alert = issue_alert(session, settings, IssueRequest(**fields))
        return alert.id, alert.reference


@pytest.fixture
def app_env(db_url: str) -> Iterator[tuple[TestClient, int, str]]:
    settings = webhook_settings(db_url, tokens=f"{TOKEN},old-token")
    alert_id, reference = issue_to_everyone(db_url, settings)
    with TestClient(create_app(settings), base_url="http://internal:8000") as client:
        yield client, alert_id, reference


def signed(path: str, params: dict[str, str], token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(PUBLIC + path, params)}


def counts(db_url: str) -> tuple[int, int, int]:
    with transaction(db_url) as s:
        return (
            s.scalar(select(func.count()).select_from(InboundMessage)) or 0,
            s.scalar(select(func.count()).select_from(DeliveryEvent)) or 0,
            s.scalar(select(func.count()).select_from(Acknowledgement)) or 0,
        )


def inbound(body: str, sid: str = "SM" + "a" * 32) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "AccountSid": SID,
        "From": "+819099990001",
        "To": "+815000000000",
        "Body": body,
        "NumSegments": "1",
    }


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Twilio-Signature": "forged"},
        signed("/webhooks/twilio/sms", inbound("1"), "wrong-token"),
    ],
    ids=["missing", "forged", "wrong-token"],
)
def test_unsigned_or_forged_is_403_and_changes_nothing(app_env, db_url, headers) -> None:
    client, _, _ = app_env
    response = client.post("/webhooks/twilio/sms", data=inbound("1"), headers=headers)
    assert response.status_code == 403
    assert counts(db_url) == (0, 0, 0)


def test_signature_over_another_url_or_account_is_refused(app_env, db_url) -> None:
    client, _, _ = app_env
    params = inbound("1")
    wrong_url = {
        "X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(
            "https://elsewhere.example/webhooks/twilio/sms", params
        )
    }
    assert client.post("/webhooks/twilio/sms", data=params, headers=wrong_url).status_code == 403
    other = {**params, "AccountSid": "AC" + "2" * 32}
    response = client.post(
        "/webhooks/twilio/sms", data=other, headers=signed("/webhooks/twilio/sms", other)
    )
    assert response.status_code == 403
    assert counts(db_url) == (0, 0, 0)


def test_reply_acknowledges_once_and_names_the_alert(app_env, db_url) -> None:
    client, _, reference = app_env
    params = inbound(f"{reference.lower()} １")
    for token in (TOKEN, "old-token", TOKEN):  # Twilio retries; the old token still works
        response = client.post(
            "/webhooks/twilio/sms",
            data=params,
            headers=signed("/webhooks/twilio/sms", params, token),
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/xml")
    assert counts(db_url) == (1, 0, 1)
    first = client.post(
        "/webhooks/twilio/sms",
        data=inbound("了解", "SM" + "b" * 32),
        headers=signed("/webhooks/twilio/sms", inbound("了解", "SM" + "b" * 32)),
    )
    assert "<Message>" in first.text and reference in first.text
    assert counts(db_url) == (2, 0, 1)  # stored, but the recipient had already acknowledged


def test_free_text_is_a_report_and_unknown_senders_are_kept(app_env, db_url) -> None:
    client, alert_id, _ = app_env
    report = inbound("裏の崖が崩れそうです", "SM" + "c" * 32)
    response = client.post(
        "/webhooks/twilio/sms", data=report, headers=signed("/webhooks/twilio/sms", report)
    )
    assert response.status_code == 200 and "<Message>" in response.text
    stranger = {**inbound("hello", "SM" + "d" * 32), "From": "+819011112222"}
    response = client.post(
        "/webhooks/twilio/sms", data=stranger, headers=signed("/webhooks/twilio/sms", stranger)
    )
    assert response.status_code == 200 and "<Message>" not in response.text
    with transaction(db_url) as s:
        rows = {m.body: (m.interpretation, m.alert_id) for m in s.scalars(select(InboundMessage))}
    assert rows == {"裏の崖が崩れそうです": ("report", alert_id), "hello": ("unknown_sender", None)}


def test_status_callbacks_only_move_forward(app_env, db_url) -> None:
    client, alert_id, _ = app_env
    with transaction(db_url) as s:
        delivery = s.scalars(select(Delivery).where(Delivery.alert_id == alert_id)).one()
        delivery.state, delivery.provider_id = "accepted", "SM" + "e" * 32
        path = f"/webhooks/twilio/status?d={delivery.id}"
    for status in ("delivered", "sent", "undelivered", "delivered"):  # reordered and repeated
        params = {"MessageSid": "SM" + "e" * 32, "AccountSid": SID, "MessageStatus": status}
        assert client.post(path, data=params, headers=signed(path, params)).status_code == 204
    unknown = {"MessageSid": "SM" + "f" * 32, "AccountSid": SID, "MessageStatus": "delivered"}
    assert (
        client.post(
            "/webhooks/twilio/status",
            data=unknown,
            headers=signed("/webhooks/twilio/status", unknown),
        ).status_code
        == 204
    )
    with transaction(db_url) as s:
        delivery = s.scalars(select(Delivery).where(Delivery.alert_id == alert_id)).one()
        assert delivery.state == "delivered"
        events = s.scalars(select(DeliveryEvent)).all()
        assert len(events) == 5 and sum(e.delivery_id is None for e in events) == 1


def test_link_get_changes_nothing_post_acknowledges(app_env, db_url) -> None:
    client, alert_id, _ = app_env
    with transaction(db_url) as s:
        body = s.scalars(select(Delivery.body).where(Delivery.alert_id == alert_id)).one()
    link = next(word for word in body.split() if "/a/" in word)
    path = "/a/" + link.split("/a/")[1].rstrip("。)")
    page = client.get(path)
    assert page.status_code == 200 and "【テスト】" in page.text and 'name="answer"' in page.text
    assert counts(db_url) == (0, 0, 0)
    tampered = path[:-2] + ("AA" if not path.endswith("AA") else "BB")
    assert client.post(tampered, data={"answer": "1"}).status_code == 404
    assert counts(db_url) == (0, 0, 0)
    done = client.post(path, data={"answer": "1"})
    assert done.status_code == 200 and "受け付けました" in done.text
    assert counts(db_url) == (1, 0, 1)  # the tap is on record, and one acknowledgement
    again = client.post(path, data={"answer": "1"})  # a second tap: an event, not an ack
    assert again.status_code == 200 and counts(db_url) == (2, 0, 1)
    assert client.post(path, data={"answer": "7"}).status_code == 422
    assert counts(db_url) == (2, 0, 1)


def test_expired_link_is_410_and_records_nothing(app_env, db_url) -> None:
    from relay.models import Alert, Recipient
    from relay.replies.links import LINK_LIFETIME, make_token

    client, alert_id, _ = app_env
    with transaction(db_url) as s:
        recipient_id = s.scalars(select(Recipient.id).where(Recipient.alert_id == alert_id)).one()
        s.get(Alert, alert_id).sent_at -= LINK_LIFETIME  # issued three days ago
    token = make_token("webhook-test-secret-key", recipient_id, "sms")
    page = client.get(f"/a/{token}")
    assert page.status_code == 410 and "このリンクは使えません" in page.text
    assert client.post(f"/a/{token}", data={"answer": "1"}).status_code == 410
    assert counts(db_url) == (0, 0, 0)


@pytest.mark.parametrize("hint", ["99999999999999999999999", "²", "１２", "-1"])
def test_a_delivery_hint_that_is_not_our_id_is_no_hint(app_env, db_url, hint) -> None:
    """Signed, but `d` is no id the relay gives: the SID alone decides, never a 500."""
    client, alert_id, _ = app_env
    with transaction(db_url) as s:
        delivery = s.scalars(select(Delivery).where(Delivery.alert_id == alert_id)).one()
        delivery.state, delivery.provider_id = "accepted", "SM" + "e" * 32
    path = f"/webhooks/twilio/status?d={quote(hint)}"  # as sent: percent-encoded
    params = {"MessageSid": "SM" + "e" * 32, "AccountSid": SID, "MessageStatus": "delivered"}
    assert client.post(path, data=params, headers=signed(path, params)).status_code == 204
    with transaction(db_url) as s:
        assert s.scalars(select(Delivery.state)).one() == "delivered"


def test_a_status_word_longer_than_its_column_is_stored_cut(app_env, db_url) -> None:
    """A status no Twilio sends today must not fail the callback for ever (Twilio retries)."""
    client, alert_id, _ = app_env
    with transaction(db_url) as s:
        delivery_id = s.scalars(select(Delivery.id).where(Delivery.alert_id == alert_id)).one()
    path = f"/webhooks/twilio/status?d={delivery_id}"
    params = {"MessageSid": "SM" + "e" * 32, "AccountSid": SID, "MessageStatus": "x" * 40}
    assert client.post(path, data=params, headers=signed(path, params)).status_code == 204
    with transaction(db_url) as s:
        (event,) = s.scalars(select(DeliveryEvent)).all()
        assert event.status == "x" * 32 and event.delivery_id == delivery_id
        assert event.payload["MessageStatus"] == "x" * 40  # the full request is kept
