"""The TwiML builders: well-formed XML, Japanese text intact, the Gather wired to its action."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from channels.twilio_voice import (
    NO_INPUT_JA,
    call_twiml,
    hangup_twiml,
    messaging_twiml,
    say_twiml,
)

TEXT = "【訓練】金沢区役所です。震度５強の地震が発生しました。避難所を確認してください。"
PROMPT = "確認した場合は1を押してください。"
ACTION = "https://relay.example.jp/webhooks/twilio/voice/gather?d=12&t=a<b>"


def parse(document: str) -> ET.Element:
    assert document.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(document.encode("utf-8"))  # noqa: S314 - our own output
    assert root.tag == "Response"
    return root


@pytest.mark.parametrize("repeat", [1, 2, 3])
def test_call_twiml_says_the_message_repeat_times_then_gathers(repeat: int) -> None:
    root = parse(call_twiml(TEXT, gather_action=ACTION, prompt=PROMPT, repeat=repeat))
    verbs = list(root)
    assert [v.tag for v in verbs] == ["Say"] * repeat + ["Gather", "Say"]
    for say in verbs[:repeat]:
        assert say.text == TEXT
        assert say.get("language") == "ja-JP"
    gather = verbs[repeat]
    assert gather.get("action") == ACTION  # escaped on the way out, exact on the way back
    assert gather.get("method") == "POST"
    assert gather.get("numDigits") == "1"
    assert gather.get("timeout") == "8"
    assert [(c.tag, c.text) for c in gather] == [("Say", PROMPT)]
    assert verbs[-1].text == NO_INPUT_JA


def test_call_twiml_options() -> None:
    document = call_twiml(
        "Kanazawa Ward drill.",
        gather_action="/g",
        prompt="Press 1.",
        language="en-US",
        voice=None,
        timeout_s=5,
        no_input="Goodbye.",
    )
    root = parse(document)
    assert all(say.get("voice") is None for say in root.iter("Say"))
    assert {say.get("language") for say in root.iter("Say")} == {"en-US"}
    gather = root.find("Gather")
    assert gather is not None and gather.get("timeout") == "5"
    assert root[-1].text == "Goodbye."


def test_call_twiml_fits_twilios_inline_limit() -> None:
    # Twilio's inline Twiml parameter holds 4,000 characters; a typical alert is far below.
    assert len(call_twiml(TEXT, gather_action=ACTION, prompt=PROMPT)) < 1500


def test_text_with_markup_characters_is_escaped() -> None:
    root = parse(say_twiml('A & B <避難> "情報"', "ja-JP"))
    assert root[0].text == 'A & B <避難> "情報"'


def test_say_twiml_says_once_and_hangs_up() -> None:
    root = parse(say_twiml("確認しました。ありがとうございました。", "ja-JP"))
    assert [v.tag for v in root] == ["Say", "Hangup"]
    assert root[0].get("voice") == "Polly.Mizuki"
    assert [v.tag for v in parse(say_twiml("x", "ja-JP", hangup=False))] == ["Say"]


def test_hangup_twiml() -> None:
    assert [v.tag for v in parse(hangup_twiml())] == ["Hangup"]


def test_messaging_twiml_reply_and_silence() -> None:
    root = parse(messaging_twiml("受け付けました（K7QF）。ありがとうございます。"))
    assert [(m.tag, m.text) for m in root] == [
        ("Message", "受け付けました（K7QF）。ありがとうございます。")
    ]
    assert len(parse(messaging_twiml(None))) == 0
    assert len(parse(messaging_twiml(""))) == 0
