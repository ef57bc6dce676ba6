"""Questionnaires (issue 16): the built-in ones load, each organization kind gets its own
questions, answers are checked, and a compact SMS reply is read the way the help text says."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.models import ORG_KINDS
from relay.questions.catalog import (
    AnswerError,
    QuestionnaireError,
    load_all,
    load_questionnaire,
    questionnaire,
)
from relay.questions.sms_answers import parse_sms_answers

DAMAGE = questionnaire("damage-report")
BASE = questionnaire("base-status")


def test_built_ins_load_with_labels_in_every_language() -> None:
    known = load_all()
    assert set(known) == {"damage-report", "base-status", "safety-check"}
    assert [q.id for q in DAMAGE.questions] == ["injured", "buildings", "fire", "roads", "needs"]
    for q in (q for qn in known.values() for q in qn.questions):
        for language in ("ja", "en", "ja-easy"):
            assert q.label(language)
            assert all(o.label(language) for o in q.choices())


def test_each_kind_of_organization_gets_its_questions() -> None:
    assert [q.id for q in BASE.for_kind("disaster_base")] == ["opened", "sheltering", "supplies"]
    assert BASE.for_kind("association") == ()
    safety = questionnaire("safety-check")
    assert [q.id for q in safety.for_kind("care_plaza")] == ["users_safe", "staff", "utilities"]
    assert [q.id for q in safety.for_kind("hospital")] == ["hospital_accepting"]
    assert all(len(DAMAGE.for_kind(kind)) == 5 for kind in ORG_KINDS)


def test_unknown_questionnaire_names_the_known_ones() -> None:
    with pytest.raises(QuestionnaireError, match="damage-report"):
        questionnaire("weather")


def test_answers_are_checked() -> None:
    injured, fire = DAMAGE.question("injured"), DAMAGE.question("fire")
    sheltering = BASE.question("sheltering")
    assert injured and fire and sheltering
    assert injured.check("2") == 2 and injured.is_critical(2) and not injured.is_critical(1)
    assert fire.check(1) == 1 and fire.is_critical(1)  # はい: a fire
    assert sheltering.check("45") == 45
    for question, bad, says in (
        (injured, "4", "1〜3"),
        (injured, "x", "数字"),
        (sheltering, "5001", "0〜5000"),
        (sheltering, "-1", "数字"),
        (fire, True, "数字"),
    ):
        with pytest.raises(AnswerError, match=says):
            question.check(bad)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("kind", '"scale"', "kind must be"),
        ("kinds", '["school"]', "unknown organization kind school"),
        ("required", '"yes"', "required is true or false"),
        ("id", '"two words"', "id must be"),
    ],
)
def test_a_malformed_file_names_its_field(
    tmp_path: Path, field: str, value: str, message: str
) -> None:
    source = (Path(__file__).parents[1] / "templates/questions/base-status.toml").read_text()
    path = tmp_path / "base-status.toml"
    path.write_text(_replace_first(source, field, value))
    with pytest.raises(QuestionnaireError, match=message) as caught:
        load_questionnaire(path)
    assert "base-status.toml" in str(caught.value)


def _replace_first(source: str, field: str, value: str) -> str:
    """The first question's `field` set to `value` (added if it has none)."""
    head, sep, rest = source.partition("[[questions]]\n")
    body, sep2, tail = rest.partition("[[questions]]")
    kept = [line for line in body.splitlines() if not line.startswith(f"{field} =")]
    return head + sep + f"{field} = {value}\n" + "\n".join(kept) + "\n" + sep2 + tail


# ---- SMS replies --------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["1 2 0 1", "１　２　０　１", "1,2,0,1", "1、2、0、1"])
def test_answers_in_question_order(text: str) -> None:
    parsed = parse_sms_answers(text, DAMAGE.questions)
    assert parsed.values == {"injured": 1, "buildings": 2, "roads": 1}  # 0 skipped the fire
    assert parsed.problems == ()


def test_words_after_the_numbers_answer_the_free_text_question() -> None:
    parsed = parse_sms_answers("1 1 2 2 毛布と水が足りない", DAMAGE.questions)
    assert parsed.values == {
        "injured": 1, "buildings": 1, "fire": 2, "roads": 2, "needs": "毛布と水が足りない"
    }  # fmt: skip


@pytest.mark.parametrize("text", ["避難者 45", "避難者数 45", "sheltering 45", "避難者　４５"])
def test_answers_by_name(text: str) -> None:
    assert parse_sms_answers(text, BASE.questions).values == {"sheltering": 45}


def test_several_by_name_and_text_last() -> None:
    parsed = parse_sms_answers("開設 1 避難者 120 不足 毛布 50枚", BASE.questions)
    assert parsed.values == {"opened": 1, "sheltering": 120, "supplies": "毛布 50枚"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("4 1 1 1", "人的被害: 1〜3の番号で答えてください"),
        ("1 1 1 1 1 1", "回答は4問分です"),
        ("避難者 9999", "避難者数: 0〜5000で答えてください"),
        ("避難者 たくさん", "避難者数: 数字で答えてください"),
        ("避難者", ""),  # one word: not an answer at all
    ],
)
def test_what_cannot_be_taken_is_said(text: str, problem: str) -> None:
    questions = BASE.questions if text.startswith("避難者") else DAMAGE.questions
    parsed = parse_sms_answers(text, questions)
    if problem:
        assert any(problem in p for p in parsed.problems), parsed
    else:
        assert not parsed.is_answer


@pytest.mark.parametrize("text", ["1", "了解", "2", "被害あり", "道がふさがっています", ""])
def test_an_acknowledgement_or_a_report_is_not_an_answer(text: str) -> None:
    assert not parse_sms_answers(text, DAMAGE.questions).is_answer


@given(st.text(max_size=200))
def test_any_text_parses_without_raising(text: str) -> None:
    parsed = parse_sms_answers(text, DAMAGE.questions + BASE.questions)
    assert all(isinstance(p, str) for p in parsed.problems)
