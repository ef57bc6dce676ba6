"""The trust boundary, exhaustively: every Twilio webhook refuses a request Twilio did not sign
for exactly this URL, these fields and our account; acknowledgement links refuse tampered,
expired, foreign and made-up tokens. Each refusal has its exact status and leaves the whole
database as it was (every table's rows and every delivery's and recipient's state)."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

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
from relay.models import Alert, Base, Delivery, Recipient
from relay.replies.links import LINK_LIFETIME, make_token
from relay.web.app import create_app
from relay.web.links import BAD_LINKS_PER_ADDRESS

PUBLIC = "https://relay.example.jp"
SID = "AC" + "3" * 32
TOKEN = "trust-test-token"
SECRET = "trust-test-secret-key-0123"
SMS_SID, CALL_SID = "SM" + "4" * 32, "CA" + "4" * 32
CSV = (
    "org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,priority,"
    "mobile,landline,email,language\n"
    "t1,西柴自治会,association,西柴,,,山田 一郎,会長,1,090-9999-0001,,,ja\n"
    "t2,六浦自治会,association,六浦,,,佐藤 花子,会長,1,090-9999-0002,,,ja\n"
)


@pytest.fixture
def relay(db_url: str) -> Iterator[tuple[TestClient, Settings, dict[str, Any]]]:
    settings = load_settings(
        {
            "RELAY_DATABASE_URL": db_url,
            "RELAY_PUBLIC_URL": PUBLIC,
            "TWILIO_ACCOUNT_SID": SID,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "RELAY_SECRET_KEY": SECRET,
        }
    )
    with transaction(db_url) as session:
        apply_directory(session, parse_directory(CSV), actor="test")
        alert = issue_alert(
            session,
            settings,
            IssueRequest(
                template="test", audience=parse_audience("all"), channels=("sms", "voice"),
                mode="blast", status="Test", ack_within=timedelta(minutes=30),
            ),
        )  # fmt: skip
        deliveries = list(session.scalars(select(Delivery).where(Delivery.alert_id == alert.id)))
        sms = min((d for d in deliveries if d.channel == "sms"), key=lambda d: d.recipient_id)
        call = min((d for d in deliveries if d.channel == "voice"), key=lambda d: d.recipient_id)
        sms.state, sms.provider_id = "accepted", SMS_SID
        call.state, call.provider_id = "accepted", CALL_SID
        recipients = sorted(d.recipient_id for d in deliveries if d.channel == "sms")
        ids = {"sms": sms.id, "call": call.id, "recipients": recipients}
    with TestClient(create_app(settings), base_url="http://internal:8000") as client:
        yield client, settings, ids


def snapshot(db_url: str) -> tuple[Any, ...]:
    """Every table's row count, and the state of every delivery and recipient."""
    with transaction(db_url) as session:
        counts = tuple(
            session.scalar(select(func.count()).select_from(table))
            for table in Base.metadata.sorted_tables
        )
        deliveries = tuple(
            session.execute(
                select(Delivery.id, Delivery.state, Delivery.provider_id, Delivery.reached_at)
                .order_by(Delivery.id)
            ).all()
        )  # fmt: skip
        recipients = tuple(
            session.execute(
                select(
                    Recipient.id, Recipient.reached_at, Recipient.acknowledged_at,
                    Recipient.next_action_at,
                ).order_by(Recipient.id)
            ).all()
        )  # fmt: skip
    return counts, deliveries, recipients


def _requests(ids: dict[str, Any]) -> dict[str, dict[str, str]]:
    """A request Twilio would really send to each webhook (path with query -> form)."""
    return {
        f"/webhooks/twilio/status?d={ids['sms']}": {
            "MessageSid": SMS_SID, "AccountSid": SID, "MessageStatus": "delivered",
        },
        f"/webhooks/twilio/voice/status?d={ids['call']}": {
            "CallSid": CALL_SID, "AccountSid": SID, "CallStatus": "completed",
            "AnsweredBy": "human",
        },
        f"/webhooks/twilio/voice/twiml?d={ids['call']}": {
            "CallSid": CALL_SID, "AccountSid": SID, "AnsweredBy": "human",
        },
        f"/webhooks/twilio/voice/gather?d={ids['call']}": {
            "CallSid": CALL_SID, "AccountSid": SID, "Digits": "1", "From": "+815000000000",
        },
        "/webhooks/twilio/sms": {
            "MessageSid": "SM" + "5" * 32, "AccountSid": SID, "From": "+819099990001",
            "To": "+815000000000", "Body": "1", "NumSegments": "1",
        },
    }  # fmt: skip


def _sign(url: str, params: dict[str, str], token: str = TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, params))


def _attacks(path: str, params: dict[str, str]) -> list[tuple[str, dict[str, str], Any, str]]:
    """(name, headers, body, expected text) of requests that must be refused with 403."""
    bare, _, query = path.partition("?")
    good = PUBLIC + path
    other_query = bare + "?d=1" + ("1" if query != "d=11" else "2")
    bad_sig = "invalid Twilio signature"
    return [
        ("missing signature", {}, params, bad_sig),
        ("empty signature", {"X-Twilio-Signature": ""}, params, bad_sig),
        ("forged signature", {"X-Twilio-Signature": base64.b64encode(b"x" * 20).decode()},
         params, bad_sig),
        ("signed with another auth token",
         {"X-Twilio-Signature": _sign(good, params, "another-token")}, params, bad_sig),
        ("signed for another host",
         {"X-Twilio-Signature": _sign("https://evil.example.jp" + path, params)}, params, bad_sig),
        ("signed for http instead of https",
         {"X-Twilio-Signature": _sign("http://relay.example.jp" + path, params)}, params, bad_sig),
        ("signed for the internal URL the proxy used",
         {"X-Twilio-Signature": _sign("http://internal:8000" + path, params)}, params, bad_sig),
        ("signed for another delivery id in the query",
         {"X-Twilio-Signature": _sign(PUBLIC + other_query, params)}, params, bad_sig),
        ("a field changed after signing",
         {"X-Twilio-Signature": _sign(good, params)},
         {**params, "AccountSid": SID, "Extra": "injected"}, bad_sig),
        ("signed, but for another account",
         {"X-Twilio-Signature": _sign(good, {**params, "AccountSid": "AC" + "9" * 32})},
         {**params, "AccountSid": "AC" + "9" * 32}, "unknown Twilio account"),
        ("signed, without an account", {"X-Twilio-Signature": _sign(good, {
            k: v for k, v in params.items() if k != "AccountSid"})},
         {k: v for k, v in params.items() if k != "AccountSid"}, "unknown Twilio account"),
    ]  # fmt: skip


def test_every_webhook_refuses_what_twilio_did_not_sign(relay, db_url: str) -> None:
    client, _, ids = relay
    before = snapshot(db_url)
    refused = 0
    for path, params in _requests(ids).items():
        for name, headers, body, text in _attacks(path, params):
            response = client.post(path, data=body, headers=headers)
            assert (response.status_code, response.text) == (403, text), (path, name)
            refused += 1
        # Not a form at all, with a signature over nothing.
        junk = client.post(
            path,
            content=b"\xff\xfe<xml/>",
            headers={
                "Content-Type": "application/xml",
                "X-Twilio-Signature": _sign(PUBLIC + path, {}),
            },
        )
        assert junk.status_code == 403, path
        assert snapshot(db_url) == before, path
    assert refused == 5 * 11
    # The control: the same requests, properly signed, are taken (so the snapshot would see).
    for path, params in _requests(ids).items():
        response = client.post(
            path, data=params, headers={"X-Twilio-Signature": _sign(PUBLIC + path, params)}
        )
        assert response.status_code in (200, 204), (path, response.text)
    assert snapshot(db_url) != before


def _token_bytes(token: str) -> bytearray:
    return bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_links_refuse_tampered_expired_foreign_and_made_up_tokens(relay, db_url: str) -> None:
    client, _, ids = relay
    mine, theirs = ids["recipients"]
    token = make_token(SECRET, mine, "sms")
    assert len(token) == 12
    # Pointed at another recipient: the token's recipient id changed, the MAC kept.
    foreign = _token_bytes(token)
    foreign[0:4] = struct.pack(">I", theirs)
    flipped_mac = _token_bytes(token)
    flipped_mac[-1] ^= 1
    cases = [
        ("for another recipient", _encode(bytes(foreign)), 404, "this link is not valid"),
        ("MAC changed", _encode(bytes(flipped_mac)), 404, "this link is not valid"),
        ("signed with another secret", make_token("another-secret-key-000", mine, "sms"),
         404, "this link is not valid"),
        ("genuine, for a recipient that does not exist", make_token(SECRET, 999_999, "sms"),
         404, "not found"),
        ("truncated", token[:-3], 404, "malformed link"),
        ("too long", token * 3, 404, "malformed link"),
        ("not base64", "!!!!" + token[4:], 404, "malformed link"),
    ]  # fmt: skip
    before = snapshot(db_url)
    for name, bad, status, reason in cases:
        for response in (
            client.get(f"/a/{bad}"),
            client.post(f"/a/{bad}", data={"answer": "1"}),
        ):
            assert response.status_code == status, name
            assert f"このリンクは使えません（{reason}）" in response.text, name
        assert snapshot(db_url) == before, name
    # Expired: the link lasts LINK_LIFETIME from the alert's issue, read from the database.
    with transaction(db_url) as session:
        alert = session.get(Alert, session.get(Recipient, mine).alert_id)
        issued, alert.sent_at = alert.sent_at, alert.sent_at - LINK_LIFETIME
    for response in (client.get(f"/a/{token}"), client.post(f"/a/{token}", data={"answer": "1"})):
        assert response.status_code == 410
        assert "このリンクは使えません（this link has expired）" in response.text
    assert snapshot(db_url) == before
    with transaction(db_url) as session:
        session.get(Alert, session.get(Recipient, mine).alert_id).sent_at = issued
    # The genuine link still works, and only for its own recipient; its page carries what the
    # one-segment SMS has no room for: the reference, and that a reply works too.
    page = client.get(f"/a/{token}")
    assert page.status_code == 200
    assert "SMSに番号を返信しても回答できます" in page.text and "参照番号" in page.text
    assert client.post(f"/a/{token}", data={"answer": "1"}).status_code == 200
    with transaction(db_url) as session:
        acknowledged = {
            r.id: r.acknowledged_at is not None for r in session.scalars(select(Recipient))
        }
    assert acknowledged == {mine: True, theirs: False}


def test_an_address_guessing_links_is_refused_for_a_while(relay, db_url: str) -> None:
    """A 40-bit MAC is safe only if nobody can try 2^40 tokens: after BAD_LINKS_PER_ADDRESS
    made-up tokens from one address, its link pages are refused (429), nothing recorded."""
    client, _, ids = relay
    genuine = make_token(SECRET, ids["recipients"][0], "sms")
    for n in range(BAD_LINKS_PER_ADDRESS):
        guess = make_token("guessing-secret-key-" + str(n), ids["recipients"][0], "sms")
        assert client.get(f"/a/{guess}").status_code == 404
    before = snapshot(db_url)
    refused = client.post(f"/a/{genuine}", data={"answer": "1"})
    assert refused.status_code == 429 and "too many invalid links" in refused.text
    assert snapshot(db_url) == before
