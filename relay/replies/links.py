"""Per-delivery acknowledgement links: `/a/{token}`, HMAC-signed, 12 characters.

The token binds one recipient of one alert and the channel the link travelled on (so a tap
tells which channel reached the person). Every character of it is paid for in every SMS: a
Japanese SMS has 70 characters, and the link is most of them (issue 15). So the token holds
only what the database cannot tell: the recipient id (4 bytes) and a MAC (5 bytes) over the id
and the channel — base64url, 12 characters. The channel is not written in the token: the
reader tries the three, and the one whose MAC matches is the channel. The expiry is not in it
either: a link lasts LINK_LIFETIME from its alert's issue, read from the alert's row, so no
one can write a later expiry into a token.

A 40-bit MAC tried against three channels: a made-up token for an existing recipient passes
once in 2^40 / 3 ≈ 3.7 x 10^11 tries; the link page refuses an address after 30 bad tokens in
15 minutes (relay/web/links.py), so guessing is not a way in. The same secret signs every
link of a deployment; changing RELAY_SECRET_KEY voids the links already sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta

LINK_LIFETIME = timedelta(days=3)
TOKEN_LENGTH = 12
_ID = struct.Struct(">I")
_CHANNELS = ("sms", "email", "voice")
_MAC_BYTES = 5


class LinkError(ValueError):
    """The token is malformed, tampered with or expired; `reason` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LinkToken:
    recipient_id: int
    channel: str


def _mac(secret: str, recipient: bytes, channel: str) -> bytes:
    key = hashlib.sha256(b"relay-ack-link:" + secret.encode()).digest()
    return hmac.new(key, recipient + channel.encode(), hashlib.sha256).digest()[:_MAC_BYTES]


def make_token(secret: str, recipient_id: int, channel: str) -> str:
    if channel not in _CHANNELS:
        raise ValueError(f"no link channel {channel!r}")
    recipient = _ID.pack(recipient_id)
    return base64.urlsafe_b64encode(recipient + _mac(secret, recipient, channel)).decode()


def read_token(secret: str, token: str) -> LinkToken:
    """The recipient and channel a token was made for; never raises anything but LinkError.
    Whether it has expired is the caller's to check (link_expired), against its alert."""
    if len(token) != TOKEN_LENGTH or not token.isascii():
        raise LinkError("malformed link")
    try:
        raw = base64.urlsafe_b64decode(token.encode())
    except (ValueError, binascii.Error):
        raise LinkError("malformed link") from None
    if base64.urlsafe_b64encode(raw).decode() != token:  # only the one spelling we write
        raise LinkError("malformed link")
    recipient, mac = raw[: _ID.size], raw[_ID.size :]
    for channel in _CHANNELS:
        if hmac.compare_digest(mac, _mac(secret, recipient, channel)):
            return LinkToken(_ID.unpack(recipient)[0], channel)
    raise LinkError("this link is not valid")


def link_expired(issued_at: datetime, now: datetime) -> bool:
    """Whether a link of an alert issued at `issued_at` has run out."""
    return now >= issued_at + LINK_LIFETIME


def link_url(public_url: str, token: str) -> str:
    return f"{public_url}/a/{token}"
