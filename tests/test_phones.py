"""Phone numbers as Japanese users write them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.directory.phones import PhoneNumberError, parse_phone


@pytest.mark.parametrize(
    ("text", "e164", "line_type"),
    [
        ("090-1234-5678", "+819012345678", "mobile"),
        ("０９０１２３４５６７８", "+819012345678", "mobile"),
        ("０９０－１２３４－５６７８", "+819012345678", "mobile"),
        ("+81 90 1234 5678", "+819012345678", "mobile"),
        ("＋８１ ９０ １２３４ ５６７８", "+819012345678", "mobile"),
        (" 080 9999 0001 ", "+818099990001", "mobile"),
        ("070-9999-0001", "+817099990001", "mobile"),
        ("045-799-0001", "+81457990001", "landline"),
        ("(045)799-0001", "+81457990001", "landline"),
        ("03-1234-5678", "+81312345678", "landline"),
        ("050-9999-0001", "+815099990001", "ip_phone"),
    ],
)
def test_accepted_forms(text: str, e164: str, line_type: str) -> None:
    number = parse_phone(text)
    assert (number.e164, number.line_type) == (e164, line_type)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abc", "not a phone number"),
        ("090-1234", "not a valid number"),
        ("090-0000-0000", "not a valid number"),
        ("0120-123-456", "cannot take calls or SMS|can take calls"),
        ("1" * 50, "too long"),
    ],
)
def test_rejected_with_reason(text: str, reason: str) -> None:
    with pytest.raises(PhoneNumberError, match=reason):
        parse_phone(text)


@given(st.text(max_size=60))
def test_any_text_parses_or_raises_only_phone_number_error(text: str) -> None:
    try:
        number = parse_phone(text)
    except PhoneNumberError:
        return
    assert number.e164.startswith("+")
    assert number.line_type in {"mobile", "landline", "ip_phone"}


@given(st.from_regex(r"0[789]0-?[1-9][0-9]{3}-?[0-9]{4}", fullmatch=True))
def test_mobile_numbers_are_mobile_whatever_the_hyphens(text: str) -> None:
    try:
        number = parse_phone(text)
    except PhoneNumberError:
        return  # some blocks are unassigned; validity is phonenumbers' to judge
    assert number.line_type == "mobile"
    assert number.e164 == "+81" + text.replace("-", "")[1:]
