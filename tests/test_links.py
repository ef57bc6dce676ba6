"""Acknowledgement link tokens: signed, expiring, bound to one recipient and channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.replies.links import LinkError, make_token, read_token

SECRET = "s" * 32
LATER = datetime.now(UTC) + timedelta(days=1)


def test_round_trip_and_length() -> None:
    token = make_token(SECRET, 4_000_000, "sms", LATER)
    assert len(token) <= 28 and token.isascii()
    parsed = read_token(SECRET, token)
    assert (parsed.recipient_id, parsed.channel) == (4_000_000, "sms")


def test_expired() -> None:
    token = make_token(SECRET, 7, "email", datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(LinkError, match="expired"):
        read_token(SECRET, token)


def test_other_secret_and_tampering_are_refused() -> None:
    token = make_token(SECRET, 7, "email", LATER)
    with pytest.raises(LinkError, match="not valid"):
        read_token("t" * 32, token)
    # change the recipient id inside the payload, keep the MAC
    flipped = ("B" if token[3] != "B" else "C").join([token[:3], token[4:]])
    with pytest.raises(LinkError):
        read_token(SECRET, flipped)


@given(st.text(max_size=80))
def test_garbage_raises_only_link_error(text: str) -> None:
    with pytest.raises(LinkError):
        read_token(SECRET, text)
