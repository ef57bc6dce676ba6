"""Every message template renders, in every channel and language, within its SMS budget,
with the exercise/test markers, the reference code and a working way to answer
(ARCHITECTURE 5: every template is loaded and rendered in a test)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from relay.messages import (
    CHANNELS,
    LANGUAGES,
    STATUSES,
    MessageContext,
    SegmentBudgetError,
    TemplateVariableError,
    UnknownTemplateError,
    answer_options,
    cap_info,
    check_budget,
    default_composer,
    list_templates,
    render,
    sample_variables,
    sms_budget,
    sms_segments,
    validate,
)
from relay.messages.catalog import (
    CAP_CATEGORIES,
    CAP_CERTAINTY,
    CAP_RESPONSE_TYPES,
    CAP_SEVERITY,
    CAP_URGENCY,
)

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "messages"
EVENTS = [
    "earthquake",
    "tsunami",
    "evacuation",
    "shelter-open",
    "all-clear",
    "drill",
    "test",
    "staff-summary",
    "cap-relay",
]
SENT = datetime(2024, 11, 29, 1, 5, tzinfo=UTC)  # 10:05 in Tokyo
# Real links: public URL + /a/ + links.py's 12-character token, under the 30-character public
# URL the wording is written for, and under a 40-character one (budgets must hold for it).
LINK_45 = "https://bousai.city.example.jp/a/" + "A" * 12
LINK_55 = "https://relay-bousai.city.example.jp:8443/a/" + "B" * 12
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
MARKER = {"Exercise": "【訓練】", "Test": "【テスト】"}
SPOKEN = {
    "Exercise": {
        "ja": "これは訓練です。",
        "en": "This is a drill.",
        "ja-easy": "これは くんれん です。",
    },
    "Test": {
        "ja": "これはテストです。",
        "en": "This is a test.",
        "ja-easy": "これは テスト です。",
    },
}


def ctx(
    status: str = "Exercise",
    *,
    ack_url: str | None = LINK_55,
    two_way: bool = True,
    sent_at: datetime = SENT,
) -> MessageContext:
    return MessageContext(
        status=status,
        sent_at=sent_at,
        reference="K7QF",
        ack_url=ack_url,
        two_way_sms=two_way,
        org_name="六浦東第3自治会",
        contact_name="山田 花子",
    )


def test_built_in_events_are_listed() -> None:
    assert sorted(EVENTS) == sorted(list_templates())


@pytest.mark.parametrize("event", EVENTS)
def test_every_template_file_exists(event: str) -> None:
    for lang in LANGUAGES:
        for name in ("sms", "voice", "email_subject"):
            assert (TEMPLATES / event / f"{name}.{lang}.j2").is_file()
        for kind in ("txt", "html"):
            assert (TEMPLATES / event / f"email.{lang}.{kind}.j2").is_file()


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("status", STATUSES)
def test_renders_in_every_channel(event: str, language: str, status: str) -> None:
    variables = sample_variables(event)
    validate(event, variables)
    for channel in CHANNELS:
        ack_url = None if channel == "voice" else LINK_55
        message = render(event, channel, language, variables, ctx(status, ack_url=ack_url))
        assert message.language == language
        assert message.channel == channel
        assert message.text.strip()
        if language != "en":
            assert JAPANESE.search(message.text)
        if channel == "email":
            assert message.subject and message.html
            assert "\n" not in message.subject
            assert "<html" in message.html
            assert LINK_55 in message.text
            assert LINK_55 in message.html
        else:
            assert message.subject is None
            assert message.html is None
        assert message.segments == (sms_segments(message.text) if channel == "sms" else 0)


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_renders_with_only_the_required_variables(event: str, language: str) -> None:
    """Optional means optional: a relayed CAP document may have a headline and nothing else."""
    required = default_composer().spec(event).required
    variables = {k: v for k, v in sample_variables(event).items() if k in required}
    for channel in CHANNELS:
        message = render(event, channel, language, variables, ctx("Actual", ack_url=LINK_55))
        assert message.text.strip() and "None" not in message.text, (channel, message.text)
    assert cap_info(event, language, variables).headline


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("status", ["Exercise", "Test"])
def test_markers_open_every_non_real_message(event: str, language: str, status: str) -> None:
    variables = sample_variables(event)
    marker = MARKER[status]
    sms = render(event, "sms", language, variables, ctx(status))
    email = render(event, "email", language, variables, ctx(status))
    voice = render(event, "voice", language, variables, ctx(status, ack_url=None))
    assert sms.text.startswith(marker)
    assert email.subject is not None and email.subject.startswith(marker)
    assert email.text.startswith(marker)
    assert email.html is not None and marker in email.html
    assert f"<title>{marker}" in email.html
    # Speech: brackets are not spoken, so the call says it in words, first and last.
    spoken = SPOKEN[status][language]
    assert voice.text.startswith(spoken)
    assert voice.text.endswith(spoken)


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_real_alerts_carry_no_marker(event: str, language: str) -> None:
    variables = sample_variables(event)
    for channel in CHANNELS:
        message = render(event, channel, language, variables, ctx("Actual"))
        for text in (message.text, message.subject or "", message.html or ""):
            assert "【訓練】" not in text
            assert "【テスト】" not in text
        assert "これは訓練です" not in message.text


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("two_way", [True, False])
@pytest.mark.parametrize("link", [LINK_45, LINK_55])
def test_sms_within_budget(
    event: str, language: str, status: str, two_way: bool, link: str
) -> None:
    message = render(
        event, "sms", language, sample_variables(event), ctx(status, ack_url=link, two_way=two_way)
    )
    assert message.segments <= sms_budget(event, language), message.text
    check_budget(event, message)
    assert link in message.text  # the way to answer: the page carries the reference


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("level", [3, 4, 5])
@pytest.mark.parametrize("sent_at", [datetime(2020, 7, 4, tzinfo=UTC), SENT])
def test_evacuation_sms_within_budget_for_every_level_and_era(
    language: str, level: int, sent_at: datetime
) -> None:
    # The labels before 2021-05-20 are much longer (避難準備・高齢者等避難開始).
    variables = {**sample_variables("evacuation"), "level": level}
    for status in STATUSES:
        for two_way in (True, False):
            context = ctx(status, two_way=two_way, sent_at=sent_at)
            message = render("evacuation", "sms", language, variables, context)
            assert message.segments <= sms_budget("evacuation", language), message.text


# The longest values validation lets through (catalog.toml max_length / max_items).
LONGEST: dict[str, object] = {
    "area": "あ" * 30,
    "shelters": ["い" * 20] * 10,
    "note": "お" * 15,
    "intensity": "6強",
    # cap-relay: a foreign document's texts at the import's limits
    "source": "発" * 40,
    "subject": "種" * 40,
    "headline": "見" * 160,
    "description": "本" * 1000,
    "instruction": "行" * 500,
    "headline_en": "H" * 160,
}


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_any_valid_values_fit_the_budget(event: str, language: str) -> None:
    """The issuer refuses an over-budget SMS, so no valid alert may be over budget with a
    link of realistic length: an all-clear must never be blocked by a long area name."""
    variables: dict[str, object] = {
        name: LONGEST.get(name, value) for name, value in sample_variables(event).items()
    }
    levels = [3, 4, 5] if event == "evacuation" else [None]
    for level in levels:
        if level is not None:
            variables["level"] = level
        validate(event, variables)
        for sent_at in (datetime(2020, 7, 4, tzinfo=UTC), SENT):
            for status in STATUSES:
                for two_way in (True, False):
                    context = ctx(status, two_way=two_way, sent_at=sent_at)
                    message = render(event, "sms", language, variables, context)
                    check_budget(event, message)


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_one_way_sms_never_asks_for_a_reply(event: str, language: str) -> None:
    variables = sample_variables(event)
    one_way = render(event, "sms", language, variables, ctx(two_way=False)).text
    two_way = render(event, "sms", language, variables, ctx(two_way=True)).text
    reply_words = {"ja": ["返信"], "en": ["Reply", "reply"], "ja-easy": ["へんじ", "おくって"]}[
        language
    ]
    assert not any(w in one_way for w in reply_words), one_way
    assert LINK_55 in one_way and LINK_55 in two_way
    if language != "ja":  # a Japanese SMS has room for the link alone (test_messages_fit.py)
        assert any(w in two_way for w in reply_words) and "1" in two_way
    # Without a link, the SMS says how: a reply where replies come back, else the call.
    no_link = render(event, "sms", language, variables, ctx(two_way=True, ack_url=None)).text
    assert any(w in no_link for w in reply_words) and "1" in no_link
    call = render(event, "sms", language, variables, ctx(two_way=False, ack_url=None)).text
    assert {"ja": "電話", "en": "call", "ja-easy": "でんわ"}[language] in call
    assert not any(w in call for w in reply_words)


@pytest.mark.parametrize("language", LANGUAGES)
def test_sms_without_a_link_still_says_how_to_answer(language: str) -> None:
    text = render(
        "earthquake",
        "sms",
        language,
        sample_variables("earthquake"),
        ctx(ack_url=None, two_way=False),
    ).text
    assert "http" not in text
    assert {"ja": "電話", "en": "call", "ja-easy": "でんわ"}[language] in text


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_reference_in_email_and_in_an_sms_without_a_link(event: str, language: str) -> None:
    """The reference picks the alert a reply is about; an SMS with a link needs none (the link
    names its recipient, and the page shows the reference)."""
    variables = sample_variables(event)
    assert "K7QF" in render(event, "sms", language, variables, ctx(ack_url=None)).text
    email = render(event, "email", language, variables, ctx())
    assert email.subject is not None and "K7QF" in email.subject
    assert "K7QF" in email.text
    assert email.html is not None and "K7QF" in email.html


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_voice_is_written_for_speech(event: str, language: str) -> None:
    text = render(event, "voice", language, sample_variables(event), ctx(ack_url=None)).text
    assert "http" not in text and "/" not in text
    assert not re.search(r"[【】「」『』()（）\[\]<>{}]", text), text
    assert "\n" not in text


def test_voice_drops_kana_readings_and_brackets_from_values() -> None:
    variables = {"intensity": "6弱", "area": "六浦（一部）の避難所(ひなんじょ)周辺"}
    text = render("earthquake", "voice", "ja", variables, ctx("Actual", ack_url=None)).text
    assert "ひなんじょ" not in text
    assert "六浦、一部、の避難所周辺" in text


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_email_shows_tokyo_time_and_greets_the_recipient(event: str, language: str) -> None:
    email = render(event, "email", language, sample_variables(event), ctx("Actual"))
    when = {"ja": "11月29日 10:05", "en": "29 Nov 10:05 JST", "ja-easy": "11月29日 10時5分"}[
        language
    ]
    assert when in email.text
    assert "山田 花子" in email.text and "六浦東第3自治会" in email.text
    assert email.html is not None and "山田 花子" in email.html


def test_html_autoescapes_variables_but_plain_text_does_not() -> None:
    evil = "<script>alert(1)</script>"
    variables = {"intensity": "5強", "area": evil}
    email = render("earthquake", "email", "ja", variables, ctx())
    assert email.html is not None
    assert "<script>" not in email.html
    assert "&lt;script&gt;" in email.html
    assert evil in email.text  # plain text: escaping would show &lt; on a phone
    subject = render("tsunami", "email", "ja", {"area": evil}, ctx()).subject
    assert subject is not None and evil in subject
    sms = render("earthquake", "sms", "en", variables, ctx())
    assert evil in sms.text and "&lt;" not in sms.text


def test_unknown_language_falls_back_to_japanese() -> None:
    message = render("test", "sms", "fr", {}, ctx())
    assert message.language == "ja"
    assert message.text == render("test", "sms", "ja", {}, ctx()).text
    assert render("test", "sms", "en-US", {}, ctx()).language == "en"
    assert render("test", "sms", "JA_EASY".replace("_", "-"), {}, ctx()).language == "ja-easy"


def test_evacuation_label_follows_the_alert_date_in_tokyo() -> None:
    variables = sample_variables("evacuation")
    before = render(
        "evacuation",
        "email",
        "ja",
        variables,
        ctx(sent_at=datetime(2021, 5, 19, 14, 59, tzinfo=UTC)),
    )
    after = render(
        "evacuation",
        "email",
        "ja",
        variables,
        ctx(sent_at=datetime(2021, 5, 19, 15, 0, tzinfo=UTC)),
    )
    assert "避難勧告" in before.text
    assert "避難勧告" not in after.text and "避難指示" in after.text


# ---- strictness ------------------------------------------------------------------------


def test_missing_variable_is_named() -> None:
    with pytest.raises(TemplateVariableError) as caught:
        validate("earthquake", {"area": "金沢区全域"})
    assert caught.value.variables == ("intensity",)
    assert "intensity" in str(caught.value) and "earthquake" in str(caught.value)


def test_unknown_variable_is_named() -> None:
    with pytest.raises(TemplateVariableError) as caught:
        validate("earthquake", {"intensity": "5強", "area": "金沢区", "magnitude": "7.1"})
    assert caught.value.variables == ("magnitude",)
    assert "magnitude" in str(caught.value) and "earthquake" in str(caught.value)


@pytest.mark.parametrize(
    ("event", "variables", "bad"),
    [
        ("evacuation", {"level": 7, "area": "金沢区", "shelters": "A"}, "level"),
        ("evacuation", {"level": "2", "area": "金沢区", "shelters": "A"}, "level"),
        ("evacuation", {"level": "four", "area": "金沢区", "shelters": "A"}, "level"),
        ("evacuation", {"level": True, "area": "金沢区", "shelters": "A"}, "level"),
        ("evacuation", {"level": 4, "area": "", "shelters": "A"}, "area"),
        ("evacuation", {"level": 4, "area": "   ", "shelters": "A"}, "area"),
        ("evacuation", {"level": 4, "area": "金沢区", "shelters": []}, "shelters"),
        ("evacuation", {"level": 4, "area": "金沢区", "shelters": "、 ,"}, "shelters"),
        ("earthquake", {"intensity": "8", "area": "金沢区"}, "intensity"),
        ("earthquake", {"intensity": "5強", "area": "金沢区\n全域"}, "area"),
        ("earthquake", {"intensity": "5強", "area": "あ" * 31}, "area"),
        ("tsunami", {"area": ["金沢区"]}, "area"),
        ("drill", {"note": "x" * 16}, "note"),
    ],
)
def test_invalid_value_is_named(event: str, variables: dict[str, object], bad: str) -> None:
    with pytest.raises(TemplateVariableError) as caught:
        validate(event, variables)
    assert caught.value.variables == (bad,)
    assert bad in str(caught.value) and event in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(TemplateVariableError) as caught:
        validate("evacuation", {"level": 9, "colour": "red"})
    assert set(caught.value.variables) == {"level", "area", "shelters", "colour"}


def test_values_are_normalised() -> None:
    variables = {
        "level": "４",
        "area": " 金沢区 ",
        "shelters": "金沢小学校、 六浦小学校,並木中学校",
    }
    validate("evacuation", variables)
    email = render("evacuation", "email", "ja", variables, ctx("Actual"))
    assert "警戒レベル4" in email.text
    assert "・並木中学校" in email.text
    for given, shown in (("５強", "5強"), ("5+", "5強"), ("震度6-", "6弱")):
        sms = render(
            "earthquake", "sms", "ja", {"intensity": given, "area": "金沢区"}, ctx("Actual")
        )
        assert f"震度{shown}" in sms.text
    en = render("earthquake", "sms", "en", {"intensity": "6強", "area": "Kanazawa"}, ctx("Actual"))
    assert "6 Upper" in en.text


def test_drill_takes_an_optional_note() -> None:
    validate("drill", {})
    without = render("drill", "sms", "ja", {}, ctx())
    with_note = render("drill", "sms", "ja", {"note": "第2回"}, ctx())
    assert "第2回" in with_note.text and "（" not in without.text.split("。")[0]


def test_unknown_event_and_channel() -> None:
    with pytest.raises(UnknownTemplateError, match="volcano"):
        validate("volcano", {})
    with pytest.raises(UnknownTemplateError, match="earthquake"):  # lists the known ones
        render("volcano", "sms", "ja", {}, ctx())
    with pytest.raises(UnknownTemplateError, match="fax"):
        render("test", "fax", "ja", {}, ctx())  # type: ignore[arg-type]


def test_context_is_checked() -> None:
    with pytest.raises(ValueError, match="status"):
        MessageContext("Draft", SENT, "K7QF", None, True, "", "")
    with pytest.raises(ValueError, match="aware"):
        MessageContext("Actual", datetime(2024, 1, 1), "K7QF", None, True, "", "")  # noqa: DTZ001


def test_over_budget_sms_is_reported() -> None:
    # A deployment whose public URL makes the link 170 characters long.
    long_link = "https://relay.example.jp/" + "a" * 145
    message = render("drill", "sms", "ja", {}, ctx(ack_url=long_link))
    assert message.segments > sms_budget("drill", "ja")
    with pytest.raises(SegmentBudgetError) as caught:
        check_budget("drill", message)
    assert caught.value.segments == message.segments and caught.value.budget == 2
    assert "drill" in str(caught.value)
    with pytest.raises(SegmentBudgetError):
        render("drill", "sms", "ja", {}, ctx(ack_url=long_link), enforce_budget=True)
    # Budgets are for SMS only.
    check_budget("drill", render("drill", "email", "ja", {}, ctx(ack_url=long_link)))


# ---- catalog: answers and CAP -------------------------------------------------------------


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_answer_options(event: str, language: str) -> None:
    options = answer_options(event, language)
    assert options[0].digit == "1" and options[0].code == "ack"
    digits = [o.digit for o in options]
    assert len(set(digits)) == len(digits) and "9" not in digits  # 9 repeats the call
    assert all(o.label for o in options)
    assert options[0].__dict__ == {"digit": "1", "code": "ack", "label": options[0].label}


def test_answer_labels_per_language_and_event() -> None:
    assert [(o.digit, o.code, o.label) for o in answer_options("earthquake", "ja")] == [
        ("1", "ack", "了解"),
        ("2", "need_support", "支援が必要"),
        ("3", "damage", "被害あり"),
    ]
    assert answer_options("earthquake", "en")[1].label == "Need support"
    assert answer_options("earthquake", "ja-easy")[0].label == "わかりました"
    assert [o.code for o in answer_options("test", "ja")] == ["ack"]
    assert [o.code for o in answer_options("all-clear", "ja")] == ["ack", "need_support"]
    assert answer_options("test", "xx")[0].label == "了解"


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_cap_info_is_complete_and_valid(event: str, language: str) -> None:
    info = cap_info(event, language, sample_variables(event), on=date(2024, 11, 29))
    assert info.category in CAP_CATEGORIES
    assert info.urgency in CAP_URGENCY
    assert info.severity in CAP_SEVERITY
    assert info.certainty in CAP_CERTAINTY
    assert info.response_type in CAP_RESPONSE_TYPES
    assert info.event and info.headline and info.description and info.instruction
    assert info.area_desc
    assert info.language == {"ja": "ja-JP", "en": "en-US", "ja-easy": "ja-JP-x-easy"}[language]
    assert "{{" not in info.headline + info.description + info.instruction


def test_cap_info_depends_on_level_and_date() -> None:
    base = sample_variables("evacuation")
    five = cap_info("evacuation", "ja", {**base, "level": 5}, on=date(2024, 1, 1))
    assert (five.severity, five.certainty, five.response_type) == ("Extreme", "Observed", "Shelter")
    assert "緊急安全確保" in five.headline
    three = cap_info("evacuation", "ja", {**base, "level": 3}, on=date(2021, 5, 19))
    assert (three.urgency, three.response_type) == ("Expected", "Prepare")
    assert "避難準備・高齢者等避難開始" in three.headline
    quake = cap_info("earthquake", "en", {"intensity": "5強", "area": "金沢区全域"})
    assert (quake.category, quake.event, quake.response_type) == ("Geo", "Earthquake", "Assess")
    assert "5 Upper" in quake.headline
    clear = cap_info("all-clear", "ja", {"area": "金沢区全域"})
    assert (clear.urgency, clear.response_type) == ("Past", "AllClear")
    assert cap_info("shelter-open", "ja", sample_variables("shelter-open")).area_desc == "金沢区"


def test_sample_variables_are_a_fresh_copy() -> None:
    first = sample_variables("evacuation")
    shelters = first["shelters"]
    assert isinstance(shelters, list)
    shelters.append("changed")
    assert "changed" not in sample_variables("evacuation")["shelters"]  # type: ignore[operator]
