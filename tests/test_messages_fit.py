"""One segment (issue 15): with realistic values and a public URL of up to 30 characters, the
first SMS of every built-in template is one UCS-2 segment in Japanese — marker and link
included — and at most two in English and easy Japanese; when an operator's text or a long
public URL makes it longer, the operator is told by how much."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from relay.alerts.sms_length import sms_length_notes
from relay.config import load_settings
from relay.messages import (
    LANGUAGES,
    PUBLIC_URL_ALLOWANCE,
    MessageContext,
    length_note,
    list_templates,
    render,
    sample_variables,
    sms_units,
)
from relay.replies.links import TOKEN_LENGTH, link_url, make_token

PUBLIC_30 = "https://bousai.city.example.jp"
assert len(PUBLIC_30) == PUBLIC_URL_ALLOWANCE
LINK = link_url(PUBLIC_30, make_token("s" * 32, 4_000_000_000, "sms"))
# The realistic values; the catalog's samples for the rest (relayed CAP, the summary).
REALISTIC: dict[str, dict[str, object]] = {
    "earthquake": {"intensity": "6強", "area": "金沢区全域"},
    "evacuation": {"level": 4, "area": "六浦東", "shelters": "六浦小学校"},
    "tsunami": {"area": "金沢区沿岸部"},
    "shelter-open": {"shelters": "六浦小学校、金沢小学校"},
    "all-clear": {"area": "金沢区全域"},
    "drill": {"note": "第2回"},
}
TARGET = {"ja": 1, "en": 2, "ja-easy": 2}


def context(status: str, two_way: bool, ack_url: str | None = LINK) -> MessageContext:
    return MessageContext(
        status,
        datetime(2026, 12, 7, 1, 0, tzinfo=UTC),
        "K7QF",
        ack_url,
        two_way,
        "西柴自治会",
        "山田",
    )


def statuses(event: str) -> list[str]:
    # A drill is an exercise; the test template is sent as a test; the rest may be either.
    return {"drill": ["Exercise"], "test": ["Test", "Exercise"]}.get(event, ["Actual", "Exercise"])


@pytest.mark.parametrize("event", list_templates())
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("two_way", [True, False])
def test_first_sms_fits_its_target_with_a_30_character_public_url(
    event: str, language: str, two_way: bool
) -> None:
    assert len(LINK) == len(PUBLIC_30) + len("/a/") + TOKEN_LENGTH
    variables = REALISTIC.get(event, sample_variables(event))
    for status in statuses(event):
        message = render(event, "sms", language, variables, context(status, two_way))
        assert message.segments <= TARGET[language], (status, sms_units(message.text), message.text)
        assert LINK in message.text  # the way to answer
        if status != "Actual":
            assert message.text.startswith({"Exercise": "【訓練】", "Test": "【テスト】"}[status])
        assert length_note(message, PUBLIC_30) is None


def test_the_catalog_samples_are_the_realistic_values() -> None:
    """Previews and the console's first render use the samples: they must show one segment."""
    for event, values in REALISTIC.items():
        sample = sample_variables(event)
        ja = render(event, "sms", "ja", sample, context("Exercise", True))
        assert ja.segments == 1, (event, sample, ja.text)
        assert values.keys() == sample.keys()


def test_a_long_area_is_reported_with_how_many_characters_over() -> None:
    area = "釜利谷東・六浦地区の土砂災害警戒区域"
    message = render(
        "earthquake", "sms", "ja", {"intensity": "6強", "area": area}, context("Exercise", True)
    )
    note = length_note(message, PUBLIC_30)
    assert note is not None and message.segments == 2
    assert note.over_by == len(message.text) - 70 and note.over_by > 0
    assert note.url_over_by == 0
    assert f"{note.over_by}字超過" in note.ja() and "日本語のSMSが2通分" in note.ja()
    assert f"{note.over_by} characters over 1 segment" in note.en()


def test_a_long_public_url_is_named_as_the_cause() -> None:
    public = "https://emergency-relay.ward.kanazawa.yokohama.example.jp"  # 56 characters
    link = link_url(public, "x" * TOKEN_LENGTH)
    message = render("drill", "sms", "ja", {}, context("Exercise", True, link))
    note = length_note(message, public)
    assert note is not None
    assert note.url_over_by == min(len(public) - PUBLIC_URL_ALLOWANCE, note.over_by)
    assert "公開URL" in note.ja() and "public URL" in note.en()


def test_notes_for_an_alert_name_each_language_over_its_target(monkeypatch) -> None:
    monkeypatch.setenv("RELAY_PUBLIC_URL", PUBLIC_30)
    settings = load_settings()
    assert sms_length_notes(settings, "earthquake", REALISTIC["earthquake"], "Exercise") == []
    long_area = {"intensity": "6強", "area": "あ" * 30}
    notes = {n.language: n for n in sms_length_notes(settings, "earthquake", long_area, "Actual")}
    assert "ja" in notes and notes["ja"].segments == 2 and notes["ja"].target == 1
    assert all(n.segments > n.target for n in notes.values())
