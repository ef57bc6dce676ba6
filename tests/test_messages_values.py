"""Evacuation labels by date, reference codes, local time."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.messages import (
    REFERENCE_ALPHABET,
    evacuation_label,
    is_reference_code,
    local_time,
    normalize_reference,
    reference_code,
)


def test_labels_change_on_2021_05_20() -> None:
    before, after = date(2021, 5, 19), date(2021, 5, 20)
    assert evacuation_label(3, before, "ja") == "避難準備・高齢者等避難開始"
    assert evacuation_label(4, before, "ja") == "避難勧告・避難指示（緊急）"
    assert evacuation_label(5, before, "ja") == "災害発生情報"
    assert evacuation_label(3, after, "ja") == "高齢者等避難"
    assert evacuation_label(4, after, "ja") == "避難指示"
    assert evacuation_label(5, after, "ja") == "緊急安全確保"
    assert evacuation_label(3, after, "en") == "Evacuation of elderly etc."
    assert evacuation_label(4, after, "en") == "Evacuation instruction"
    assert evacuation_label(5, after, "en") == "Emergency safety measures"
    assert evacuation_label(4, after, "ja-easy") == "避難指示(ひなん しじ)"


@pytest.mark.parametrize("language", ["ja", "en", "ja-easy"])
@pytest.mark.parametrize("level", [3, 4, 5])
def test_every_label_exists_and_changed(language: str, level: int) -> None:
    old = evacuation_label(level, date(2021, 5, 19), language)
    new = evacuation_label(level, date(2021, 5, 20), language)
    assert old and new and old != new


def test_dates_are_taken_in_tokyo() -> None:
    # 2021-05-19 15:00 UTC is already 2021-05-20 00:00 in Tokyo.
    assert (
        evacuation_label(4, datetime(2021, 5, 19, 14, 59, 59, tzinfo=UTC))
        == "避難勧告・避難指示（緊急）"
    )
    assert evacuation_label(4, datetime(2021, 5, 19, 15, 0, tzinfo=UTC)) == "避難指示"
    with pytest.raises(ValueError, match="naive"):
        evacuation_label(4, datetime(2021, 5, 20, 12, 0))  # noqa: DTZ001


def test_bad_level_and_unknown_language() -> None:
    for level in (1, 2, 6, True):
        with pytest.raises(ValueError, match="level"):
            evacuation_label(level, date(2024, 1, 1))
    assert evacuation_label(4, date(2024, 1, 1), "fr") == "避難指示"


def test_local_time_is_tokyo() -> None:
    moment = datetime(2024, 12, 31, 15, 5, tzinfo=UTC)  # New Year's Day 00:05 in Tokyo
    assert local_time(moment, "ja") == "1月1日 00:05"
    assert local_time(moment, "en") == "1 Jan 00:05 JST"
    assert local_time(moment, "ja-easy") == "1月1日 0時5分"


def test_alphabet_has_no_look_alikes() -> None:
    assert not set("0O1IL") & set(REFERENCE_ALPHABET)
    assert not any(c.islower() for c in REFERENCE_ALPHABET)
    assert len(set(REFERENCE_ALPHABET)) == len(REFERENCE_ALPHABET) == 31


@given(st.binary(min_size=4, max_size=32))
def test_codes_from_bytes(raw: bytes) -> None:
    code = reference_code(raw)
    assert len(code) == 4 and set(code) <= set(REFERENCE_ALPHABET)
    assert code == reference_code(raw)
    assert is_reference_code(code)


def test_codes_from_a_generator_are_reproducible() -> None:
    assert reference_code(random.Random(7)) == reference_code(random.Random(7))
    codes = {reference_code(random.Random(seed)) for seed in range(200)}
    assert len(codes) > 190
    with pytest.raises(ValueError, match="4 random bytes"):
        reference_code(b"abc")


def test_codes_spread_over_the_whole_alphabet() -> None:
    seen = set("".join(reference_code(random.Random(i).randbytes(8)) for i in range(500)))
    assert seen == set(REFERENCE_ALPHABET)


def test_normalize_reference() -> None:
    assert normalize_reference("ｋ７ｑｆ") == "K7QF"
    assert normalize_reference(" k7-qf ") == "K7QF"
    assert is_reference_code("k7qf")
    assert not is_reference_code("K7Q")
    assert not is_reference_code("K0QF")  # 0 is never issued
    assert not is_reference_code("了解")
