"""Durations as staff type them, and the ones no deadline can be."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.durations import LONGEST, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15", timedelta(minutes=15)),
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        (" 2H ", timedelta(hours=2)),
        ("366d", LONGEST),
    ],
)
def test_what_staff_write(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("367d", "too long: at most 366d"),
        ("99999999999999999999d", "too long"),
        ("99999999999999999999", "too long"),
        ("9" * 5000, "cannot read"),
        ("15 minutes", "cannot read"),
        ("", "cannot read"),
    ],
)
def test_what_no_deadline_can_be_is_refused_saying_why(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_duration(text)


@given(st.text(max_size=60))
def test_any_text_is_a_duration_or_a_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):  # a ValueError is the refusal; nothing else may escape
        assert timedelta(0) <= parse_duration(text) <= LONGEST
