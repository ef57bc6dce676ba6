"""SMS segment counting: the exact boundaries, and properties over any text."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.messages import sms_encoding, sms_segments, sms_units
from relay.messages.segments import GSM7_BASIC, GSM7_EXTENDED


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 1),
        ("a", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("あ" * 70, 1),
        ("あ" * 71, 2),
        ("あ" * 134, 2),
        ("あ" * 135, 3),
        ("あ" * 201, 3),
        ("あ" * 202, 4),
        ("a" * 159 + "あ", 3),  # one Japanese character makes the whole body UCS-2
        ("€" * 80, 1),  # extension characters cost two septets: 160
        ("€" * 81, 2),
        ("a" * 159 + "€", 2),  # 161 septets
        ("😀" * 35, 1),  # astral: two UTF-16 units each, 70
        ("😀" * 36, 2),
        ("あ" * 69 + "😀", 2),  # 71 units
        ("あ" * 68 + "😀", 1),  # 70 units
        # Parts never split an escape sequence or a surrogate pair, which can take a part more
        # than dividing the total would (306 septets / 134 units, but 3 parts).
        ("a" * 152 + "€" + "a" * 152, 3),
        ("あ" * 66 + "😀" + "あ" * 66, 3),
    ],
)
def test_boundaries(text: str, segments: int) -> None:
    assert sms_segments(text) == segments


def test_encoding_and_units() -> None:
    assert sms_encoding("Hello @ ¥100\n") == "GSM-7"
    assert sms_encoding("Hello あ") == "UCS-2"
    assert sms_encoding("Hello ’") == "UCS-2"  # curly quote: not GSM-7
    assert sms_units("[]") == 4
    assert sms_units("あ😀") == 3


characters = st.characters(
    codec=None, exclude_categories=()
)  # every code point, lone surrogates too
gsm_text = st.text(st.sampled_from(sorted(GSM7_BASIC | GSM7_EXTENDED)))
any_text = st.text(characters) | gsm_text | st.text(st.sampled_from("aあ€😀\n"))


@given(any_text)
def test_never_raises_and_at_least_one(text: str) -> None:
    assert sms_segments(text) >= 1


@given(any_text, any_text)
def test_appending_never_reduces_segments(head: str, tail: str) -> None:
    assert sms_segments(head + tail) >= sms_segments(head)


@given(any_text, st.sampled_from("aあ€😀 \n"))
def test_appending_one_character_adds_at_most_a_part(head: str, char: str) -> None:
    # Switching GSM-7 → UCS-2 is the only jump larger than one part.
    if sms_encoding(head + char) == sms_encoding(head):
        assert sms_segments(head + char) <= sms_segments(head) + 1


@given(st.text(st.sampled_from("abcあいう漢字 \n")))
def test_matches_the_formula_without_double_width_characters(text: str) -> None:
    gsm = sms_encoding(text) == "GSM-7"
    single, part = (160, 153) if gsm else (70, 67)
    units = len(text)
    assert sms_segments(text) == (1 if units <= single else math.ceil(units / part))
