"""The situation report by keypad (issue 16), through Twilio's signed webhooks on SQLite and
PostgreSQL: after the acknowledgement key the call asks the required questions that take a key,
says each answer back, asks again on a key that does not fit, ends with thanks; the answers
count like any other; an organization asked nothing is simply thanked."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta

import pytest
from defusedxml import ElementTree as defused
from fastapi.testclient import TestClient
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from relay.alerts.issuing import IssueRequest, issue_alert
from relay.config import load_settings
from relay.db import transaction
from relay.directory.audience import parse_audience
from relay.directory.csv_format import parse_directory
from relay.directory.store import apply_directory
from relay.models import Answer, Delivery, Organization, Recipient
from relay.web.app import create_app

PUBLIC = "https://relay.example.jp"
SID = "AC" + "7" * 32
TOKEN = "voice-questions-token"
CSV = (
    "org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,priority,"
    "mobile,landline,email,language\n"
    "b1,六浦地域防災拠点,disaster_base,六浦,,,鈴木 次郎,委員長,1,090-9999-0301,,,ja\n"
    "h1,金沢病院,hospital,六浦,,,前田 修,担当,1,090-9999-0302,,,ja\n"
)


@pytest.fixture
def calls(db_url: str) -> Iterator[tuple[TestClient, dict[str, int]]]:
    settings = load_settings(
        {"RELAY_DATABASE_URL": db_url, "RELAY_PUBLIC_URL": PUBLIC, "TWILIO_ACCOUNT_SID": SID,
         "TWILIO_AUTH_TOKEN": TOKEN, "RELAY_SECRET_KEY": "voice-questions-secret-0123"}
    )  # fmt: skip
    with transaction(db_url) as session:
        apply_directory(session, parse_directory(CSV.encode()), actor="test")
        issue_alert(
            session,
            settings,
            IssueRequest(
                template="earthquake", variables={"intensity": "6強", "area": "金沢区全域"},
                audience=parse_audience("all"), channels=("voice",), mode="blast",
                status="Exercise", ack_within=timedelta(minutes=30),
                questions=("base-status",),
            ),
        )  # fmt: skip
        ids = dict(
            session.execute(
                select(Organization.code, Delivery.id)
                .join(Recipient, Recipient.id == Delivery.recipient_id)
                .join(Organization, Organization.id == Recipient.organization_id)
            ).all()
        )
    with TestClient(create_app(settings), base_url="http://internal:8000") as client:
        yield client, ids


def post(client: TestClient, path: str, **fields: str) -> ET.Element:
    params = {"AccountSid": SID, "CallSid": "CA" + "8" * 32, **fields}
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, params)
    response = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.text
    return defused.fromstring(response.text)


def said(twiml: ET.Element) -> str:
    return " ".join(e.text or "" for e in twiml.iter("Say"))


def gather(twiml: ET.Element) -> ET.Element:
    found = twiml.find("Gather")
    assert found is not None, ET.tostring(twiml, encoding="unicode")
    return found


def test_the_call_asks_the_required_questions_by_keypad(calls, db_url: str) -> None:
    client, ids = calls
    base = ids["b1"]
    first = post(client, f"/webhooks/twilio/voice/gather?d={base}", Digits="1")
    ask = gather(first)
    assert "了解として受け付けました" in said(first) and "状況の報告をお願いします" in said(first)
    assert "開設状況。開設済みは1、開設準備中は2、開設できないは3を押してください。" in said(ask)
    assert ask.get("numDigits") == "1"
    step = ask.get("action", "").removeprefix(PUBLIC)
    # A key that does not fit: the same question again, nothing stored.
    again = post(client, step, Digits="7")
    assert "もう一度お願いします" in said(again) and gather(again).get("action") == ask.get(
        "action"
    )
    second = post(client, step, Digits="1")
    assert "開設状況、開設済み、と受け付けました。" in said(second)
    number = gather(second)
    assert number.get("finishOnKey") == "#" and number.get("numDigits") is None
    assert "避難者数を数字で入力し、最後にシャープを押してください。" in said(number)
    done = post(client, number.get("action", "").removeprefix(PUBLIC), Digits="45")
    assert "避難者数、45人、と受け付けました。" in said(done) and done.find("Hangup") is not None
    assert done.find("Gather") is None  # 不足物資 is optional free text: for the link
    with transaction(db_url) as session:
        stored = [(a.question_id, a.number, a.method) for a in session.scalars(select(Answer))]
    assert stored == [("opened", 1, "voice_key"), ("sheltering", 45, "voice_key")]


def test_an_organization_asked_nothing_is_thanked_and_the_call_ends(calls, db_url) -> None:
    client, ids = calls
    reply = post(client, f"/webhooks/twilio/voice/gather?d={ids['h1']}", Digits="1")
    assert reply.find("Gather") is None and reply.find("Hangup") is not None
    assert "了解として受け付けました" in said(reply)


def test_a_made_up_question_step_hangs_up_storing_nothing(calls, db_url: str) -> None:
    client, ids = calls
    for q in ("9", "x", "-1"):
        reply = post(client, f"/webhooks/twilio/voice/question?d={ids['b1']}&q={q}", Digits="1")
        assert reply.find("Hangup") is not None
    with transaction(db_url) as session:
        assert session.scalars(select(Answer)).first() is None
