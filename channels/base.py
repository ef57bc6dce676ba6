"""The one interface every channel implements.

Channels know vendors (APIs, error codes, status words, signatures) and nothing of alerts or
policy; `relay` services call them only through these types. A channel never returns a bare
bool: success is a `Receipt`, failure is a `ChannelError` that says whether retrying can help.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Outcome(StrEnum):
    """Channel-neutral delivery states, ordered by how far a delivery has got.

    Vendor status words (Twilio's MessageStatus/CallStatus/AnsweredBy, SMTP replies) are mapped
    to these at the edge, in one table per vendor.
    """

    QUEUED = "queued"  # accepted by the provider, not yet handed on
    SENT = "sent"  # handed to the carrier / accepted by the mail server
    DELIVERED = "delivered"  # handset confirmed (SMS) — delivered, not necessarily read
    ANSWERED = "answered"  # a human picked up the call: reached
    COMPLETED = "completed"  # the call ended after a human answered
    FAILED = "failed"  # not reached: provider refused or carrier failed
    UNDELIVERED = "undelivered"  # not reached: carrier could not deliver
    NO_ANSWER = "no_answer"  # not reached: rang out
    BUSY = "busy"  # not reached
    MACHINE = "machine"  # not reached: answering machine / fax
    BOUNCED = "bounced"  # not reached: mail rejected


NOT_REACHED = frozenset(
    {
        Outcome.FAILED,
        Outcome.UNDELIVERED,
        Outcome.NO_ANSWER,
        Outcome.BUSY,
        Outcome.MACHINE,
        Outcome.BOUNCED,
    }
)


@dataclass(frozen=True)
class SmsMessage:
    to: str  # E.164
    body: str
    status_callback: str | None = None  # URL the provider posts status changes to


@dataclass(frozen=True)
class VoiceCall:
    to: str  # E.164
    twiml_url: str  # URL the provider fetches the call's TwiML from
    status_callback: str | None = None
    detect_machine: bool = True


@dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str
    text: str
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Receipt:
    """What the provider said when it accepted a message."""

    provider: str  # "twilio-sms", "twilio-voice", "smtp"
    provider_id: str  # Twilio SID or SMTP Message-ID
    outcome: Outcome  # state known at acceptance (QUEUED for Twilio, SENT for SMTP)
    segments: int = 1


class ChannelError(Exception):
    """A send that did not go through.

    permanent: retrying the same message can never succeed (invalid number, landline for SMS).
    ambiguous: the request may have reached the provider (timeout after sending); do not blindly
        resend.
    retry_after: seconds the provider asked us to wait (HTTP 429 Retry-After), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        code: str | None = None,
        ambiguous: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.ambiguous = ambiguous
        self.retry_after = retry_after


class SmsChannel(Protocol):
    async def send_sms(self, message: SmsMessage) -> Receipt: ...


class VoiceChannel(Protocol):
    async def place_call(self, call: VoiceCall) -> Receipt: ...


class EmailChannel(Protocol):
    async def send_email(self, message: EmailMessage) -> Receipt: ...
