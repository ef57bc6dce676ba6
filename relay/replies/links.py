"""Per-delivery acknowledgement links: `/a/{token}`, HMAC-signed, expiring.

The token binds one recipient of one alert and the channel the link travelled on (so a tap
tells which channel reached the person). Short enough for an SMS: 9 bytes of payload and 12
bytes of MAC, base64url — 28 characters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

_PAYLOAD = struct.Struct(">IBI")  # recipient id, channel, expiry (unix seconds)
_CHANNELS = ("sms", "email", "voice")
_MAC_BYTES = 12


class LinkError(ValueError):
    """The token is malformed, tampered with or expired; `reason` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LinkToken:
    recipient_id: int
    channel: str
    expires_at: datetime


def _mac(secret: str, payload: bytes) -> bytes:
    key = hashlib.sha256(b"relay-ack-link:" + secret.encode()).digest()
    return hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def make_token(secret: str, recipient_id: int, channel: str, expires_at: datetime) -> str:
    payload = _PAYLOAD.pack(recipient_id, _CHANNELS.index(channel), int(expires_at.timestamp()))
    raw = payload + _mac(secret, payload)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def read_token(secret: str, token: str, now: datetime | None = None) -> LinkToken:
    """Check the signature first, then the expiry; never raises anything but LinkError."""
    if len(token) > 64:
        raise LinkError("malformed link")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        raise LinkError("malformed link") from None
    if len(raw) != _PAYLOAD.size + _MAC_BYTES:
        raise LinkError("malformed link")
    payload, mac = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        raise LinkError("this link is not valid")
    recipient_id, channel, expiry = _PAYLOAD.unpack(payload)
    expires_at = datetime.fromtimestamp(expiry, UTC)
    if channel >= len(_CHANNELS):
        raise LinkError("malformed link")
    if (now or datetime.now(UTC)) >= expires_at:
        raise LinkError("this link has expired")
    return LinkToken(recipient_id, _CHANNELS[channel], expires_at)


def link_url(public_url: str, token: str) -> str:
    return f"{public_url}/a/{token}"
