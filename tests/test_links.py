"""Acknowledgement link tokens: 12 characters, signed, bound to one recipient and channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.replies.links import (
    LINK_LIFETIME,
    TOKEN_LENGTH,
    LinkError,
    link_expired,
    make_token,
    read_token,
)

SECRET = "s" * 32


@pytest.mark.parametrize("channel", ["sms", "email", "voice"])
@pytest.mark.parametrize("recipient_id", [1, 4_000_000, 2**32 - 1])
def test_round_trip_and_length(recipient_id: int, channel: str) -> None:
    token = make_token(SECRET, recipient_id, channel)
    assert len(token) == TOKEN_LENGTH == 12 and token.isascii() and "=" not in token
    parsed = read_token(SECRET, token)
    assert (parsed.recipient_id, parsed.channel) == (recipient_id, channel)


def test_each_channel_signs_differently() -> None:
    tokens = {make_token(SECRET, 7, channel) for channel in ("sms", "email", "voice")}
    assert len(tokens) == 3


def test_expiry_runs_from_the_alerts_issue() -> None:
    issued = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    assert not link_expired(issued, issued + LINK_LIFETIME - timedelta(seconds=1))
    assert link_expired(issued, issued + LINK_LIFETIME)


def test_other_secret_and_tampering_are_refused() -> None:
    token = make_token(SECRET, 7, "email")
    with pytest.raises(LinkError, match="not valid"):
        read_token("t" * 32, token)
    # change the recipient id inside the token, keep the MAC
    flipped = ("B" if token[3] != "B" else "C").join([token[:3], token[4:]])
    with pytest.raises(LinkError):
        read_token(SECRET, flipped)


def test_only_the_one_spelling_is_read() -> None:
    token = make_token(SECRET, 7, "sms")
    with pytest.raises(LinkError, match="malformed"):
        read_token(SECRET, token + "=")


@given(st.text(max_size=80))
def test_garbage_raises_only_link_error(text: str) -> None:
    with pytest.raises(LinkError):
        read_token(SECRET, text)
