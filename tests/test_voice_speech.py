"""Spoken answers in the call (issue 10, ops/REACH.md): the Gather listens for はい as well as
the key; Twilio's SpeechResult is understood by the same parser as an SMS reply."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from relay.db import transaction
from relay.messages import answer_options
from relay.models import Acknowledgement, Delivery, InboundMessage, Recipient
from relay.replies import voice_script
from relay.reports.labels_ja import ACK_METHOD
from relay.web.app import create_app
from simulator.twiml import TwimlError, parse_twiml
from tests.test_webhooks import SID, counts, issue_to_everyone, signed, webhook_settings

CALL_SID = "CA" + "c" * 32


def _app(db_url: str, speech: bool) -> tuple[TestClient, int]:
    settings = webhook_settings(db_url)
    alert_id, _ = issue_to_everyone(
        db_url, settings, template="drill", channels=("voice",), status="Exercise",
        speech_answers=speech,
    )  # fmt: skip
    with transaction(db_url) as session:
        call_id = session.scalars(select(Delivery.id).where(Delivery.alert_id == alert_id)).one()
    return TestClient(create_app(settings), base_url="http://internal:8000"), call_id


@pytest.fixture
def call(db_url: str) -> Iterator[tuple[TestClient, int]]:
    client, call_id = _app(db_url, speech=True)
    with client:
        yield client, call_id


def _post(client: TestClient, path: str, call_id: int, **fields: str) -> str:
    url = f"/webhooks/twilio/voice/{path}?d={call_id}"
    params = {"CallSid": CALL_SID, "AccountSid": SID, "From": "+815000000000", **fields}
    response = client.post(url, data=params, headers=signed(url, params))
    assert response.status_code == 200, response.text
    return response.text


def _gather(document: str):  # type: ignore[no-untyped-def]
    return next(v for v in parse_twiml(document) if v.name == "Gather")


def test_the_call_invites_a_spoken_answer_in_japanese(call) -> None:
    client, call_id = call
    gather = _gather(_post(client, "twiml", call_id, CallStatus="in-progress"))
    assert gather.attr("input") == "dtmf speech"
    assert gather.attr("language") == "ja-JP"
    assert {"はい", "了解", "確認しました"} <= set(gather.attr("hints").split(","))
    assert gather.attr("numDigits") == "1"  # the key still works
    assert "了解の場合は1を押すか、『はい』とお答えください。" in gather.children[0].text


def test_spoken_hai_acknowledges_once_as_a_spoken_answer(call, db_url) -> None:
    client, call_id = call
    for _ in range(2):  # Twilio retries the webhook: one answer, one acknowledgement
        reply = _post(
            client, "gather", call_id, SpeechResult="はい、確認しました", Confidence="0.91"
        )
        assert "受け付けました" in reply and "<Gather" not in reply
    with transaction(db_url) as session:
        ack = session.scalars(select(Acknowledgement)).one()
        assert (ack.method, ack.channel, ack.answer_code) == ("voice_speech", "voice", "ack")
        spoken = session.scalars(select(InboundMessage)).one()
        assert (spoken.channel, spoken.body, spoken.interpretation) == (
            "voice_speech",
            "はい、確認しました",
            "ack",
        )
        assert session.scalars(select(Recipient.ack_method)).one() == "voice_speech"
    assert ACK_METHOD["voice_speech"] == "電話の音声（はい等）"


def test_speech_the_relay_cannot_understand_asks_again_and_records_no_answer(call, db_url) -> None:
    client, call_id = call
    for said in ("もしもし？", "道路が冠水しています"):
        reply = _post(client, "gather", call_id, SpeechResult=said, Confidence="0.4")
        gather = _gather(reply)  # the menu again, still listening for はい
        assert gather.attr("input") == "dtmf speech"
    inbound, _events, acks = counts(db_url)
    assert (inbound, acks) == (2, 0)
    with transaction(db_url) as session:
        kept = session.scalars(select(InboundMessage.interpretation)).all()
        assert kept == ["unknown", "unknown"]  # kept for the ward, not taken as an answer
        assert session.scalars(select(Recipient.acknowledged_at)).one() is None


def test_keys_only_call_as_in_2015(db_url) -> None:
    client, call_id = _app(db_url, speech=False)
    with client:
        gather = _gather(_post(client, "twiml", call_id, CallStatus="in-progress"))
    assert gather.attr("input") == "" and gather.attr("hints") == ""
    assert "はい" not in gather.children[0].text


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("ja", "了解の場合は1を押すか、『はい』とお答えください。支援が必要の場合は2を、"),
        ("ja-easy", "わかりましたなら 1を おすか、「はい」と いって ください。"),
        ("en", "For OK, press 1 or say yes. For Need support, press 2;"),
    ],
)
def test_menu_names_the_spoken_answer_in_each_language(language: str, expected: str) -> None:
    options = answer_options("drill", language)
    assert voice_script.menu(options, language, speech=True).startswith(expected)
    assert "9" in voice_script.menu(options, language, speech=True)  # repeat still offered


@pytest.mark.parametrize(
    "gather",
    [
        '<Gather input="voice" action="/g"/>',
        '<Gather input="dtmf speech" language="xx-XX" action="/g"/>',
        '<Gather input="" action="/g"/>',
    ],
)
def test_simulator_refuses_a_gather_twilio_would_not_run(gather: str) -> None:
    with pytest.raises(TwimlError, match="Gather"):
        parse_twiml(f"<Response>{gather}</Response>")
