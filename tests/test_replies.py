"""The SMS reply parser: what recipients actually type."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.replies.parsing import ACK_WORDS, parse_reply


@pytest.mark.parametrize(
    "text",
    [
        "1",
        "１",
        " 1 ",
        "1.",
        "了解",
        "了解です",
        "了解しました",
        "りょうかい",
        "りょうかい！",
        "リョウカイ",
        "OK",
        "ＯＫ",
        "ok!",
        "Okay",
        "はい",
        "はい、確認しました",
        "受信",
        "受信しました",
        "yes",
        "Yes.",
        "YES",
        "確認",
        "承知しました",
        "わかりました",
    ],
)
def test_acknowledgements(text: str) -> None:
    reply = parse_reply(text)
    assert (reply.kind, reply.digit) == ("ack", "1")


@pytest.mark.parametrize(
    ("text", "kind", "digit", "reference"),
    [
        ("K7QF 1", "ack", "1", "K7QF"),
        ("1 k7qf", "ack", "1", "K7QF"),
        ("ｋ７ｑｆ　１", "ack", "1", "K7QF"),
        ("K7QF 了解", "ack", "1", "K7QF"),
        ("2", "answer", "2", None),
        ("３", "answer", "3", None),
        ("k7qf ２", "answer", "2", "K7QF"),
        ("4", "report", None, None),  # not one of this alert's options
        ("12", "report", None, None),
        ("道路が冠水しています", "report", None, None),
        ("K7QF 裏の崖が崩れた", "report", None, "K7QF"),
        ("need help", "report", None, None),  # words are not codes: NEED has no digit
        ("", "empty", None, None),
        ("  。", "empty", None, None),
    ],
)
def test_answers_references_and_reports(
    text: str, kind: str, digit: str | None, reference: str | None
) -> None:
    reply = parse_reply(text)
    assert (reply.kind, reply.digit, reply.reference) == (kind, digit, reference)


def test_answer_digits_are_per_alert() -> None:
    assert parse_reply("4", answer_digits=("1", "2", "3", "4")).kind == "answer"
    assert parse_reply("2", answer_digits=("1",)).kind == "report"


@given(st.text(max_size=300))
def test_no_input_raises(text: str) -> None:
    reply = parse_reply(text)
    assert reply.kind in {"ack", "answer", "report", "empty"}


_PUNCT = st.sampled_from([" ", "　", "!", "！", ".", "。", "、", "〜", "\n", "?", "♪"])


@given(
    st.sampled_from(sorted(ACK_WORDS)),
    st.lists(_PUNCT, max_size=3),
    st.lists(_PUNCT, max_size=3),
    st.booleans(),
)
def test_any_ack_word_wrapped_in_noise_or_full_width(
    word: str, before: list[str], after: list[str], wide: bool
) -> None:
    if wide:  # the full-width form a phone's Japanese keyboard produces
        word = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in word)
        assert unicodedata.normalize("NFKC", word).casefold() in {w.casefold() for w in ACK_WORDS}
    reply = parse_reply("".join(before) + word + "".join(after))
    assert (reply.kind, reply.digit) == ("ack", "1")
