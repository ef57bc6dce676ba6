"""Twilio's words mapped to ours, in one place: error codes, message and call statuses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from twilio.base.exceptions import TwilioRestException, TwilioServiceException

from channels.base import ChannelError, Outcome
from channels.masking import mask_phone, scrub
from channels.twilio_http import ResponseInfo, TwilioTransportError, capture_response

log = logging.getLogger(__name__)
T = TypeVar("T")

# Codes that mean "this message to this recipient can never go through": retrying is useless,
# the service should move the recipient to its next step instead.
PERMANENT_CODES: dict[int, str] = {
    21211: "invalid 'To' phone number",
    21614: "'To' is not a mobile number (landline)",
    21610: "recipient unsubscribed (replied STOP)",
    21612: "'To' cannot be reached from this 'From' number",
    21408: "permission to send to this region is not enabled",
    13223: "invalid phone number format for a call",
    13224: "invalid phone number for a call",
}

# Codes that mean the *account or configuration* is wrong: permanent for this request, and the
# same for every other one until an operator fixes the settings. Services may stop a batch on
# these instead of failing deliveries one by one (see `is_config_error`).
CONFIG_CODES: dict[int, str] = {
    20003: "authentication failed (account SID / auth token)",
    20404: "resource not found (account SID or API URL)",
    21606: "'From' number cannot send SMS",
    21659: "'From' is not a Twilio number",
    21212: "invalid 'From' number",
    21603: "'From' number is required",
}

TRANSIENT_CODES: dict[int, str] = {
    20429: "too many requests",
    20500: "Twilio internal error",
    20503: "Twilio service unavailable",
}

# Retry-After is not always sent with a 429; this is what we wait then.
DEFAULT_RETRY_AFTER = 1.0

_CONFIG_STATUSES = frozenset({401, 403, 404})


def channel_error(exc: BaseException, info: ResponseInfo | None = None) -> ChannelError:
    """The `ChannelError` for anything a Twilio API call raised.

    `info` (from `twilio_http.capture_response()`) supplies the Retry-After header, which
    twilio's exceptions do not keep.
    """
    if isinstance(exc, TwilioTransportError):
        return ChannelError(
            f"no answer from Twilio: {exc}",
            permanent=False,
            code="timeout" if exc.timeout else "network",
            ambiguous=exc.sent,
        )
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        status = int(exc.status)
        code = _int_or_none(exc.code)
        text = str(getattr(exc, "msg", None) or getattr(exc, "title", "") or "")
        return _from_status(status, code, text, info)
    return ChannelError(f"unexpected {type(exc).__name__}: {exc}", permanent=False)


def _from_status(
    status: int, code: int | None, text: str, info: ResponseInfo | None
) -> ChannelError:
    # twilio puts the HTTP status in `code` when the body had none.
    if code == status:
        code = None
    label = str(code) if code is not None else f"http-{status}"
    # Twilio's messages repeat the number they refused; errors end up in logs and records.
    message = f"Twilio HTTP {status} ({label}): {scrub(text)}"
    if code in TRANSIENT_CODES or status == 429 or status >= 500 or status == 408:
        retry_after = info.retry_after if info is not None else None
        if retry_after is None and (status == 429 or code == 20429):
            retry_after = DEFAULT_RETRY_AFTER
        return ChannelError(message, permanent=False, code=label, retry_after=retry_after)
    # Every other 4xx: the same request will be refused again.
    return ChannelError(message, permanent=True, code=label)


def is_config_error(error: ChannelError) -> bool:
    """True when the failure is the account's or the settings', not the recipient's."""
    if error.code is None:
        return False
    if error.code.startswith("http-"):
        return error.code[5:].isdigit() and int(error.code[5:]) in _CONFIG_STATUSES
    return error.code.isdigit() and int(error.code) in CONFIG_CODES


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


# --- status words -----------------------------------------------------------------------------

MESSAGE_STATUS: dict[str, Outcome] = {
    "accepted": Outcome.QUEUED,
    "scheduled": Outcome.QUEUED,
    "queued": Outcome.QUEUED,
    "sending": Outcome.QUEUED,
    "sent": Outcome.SENT,
    "delivered": Outcome.DELIVERED,
    "read": Outcome.DELIVERED,
    "undelivered": Outcome.UNDELIVERED,
    "failed": Outcome.FAILED,
    "canceled": Outcome.FAILED,
}

CALL_STATUS: dict[str, Outcome] = {
    "queued": Outcome.QUEUED,
    "initiated": Outcome.QUEUED,
    "ringing": Outcome.QUEUED,
    "in-progress": Outcome.ANSWERED,
    "completed": Outcome.COMPLETED,
    "busy": Outcome.BUSY,
    "no-answer": Outcome.NO_ANSWER,
    "failed": Outcome.FAILED,
    "canceled": Outcome.FAILED,
}

# AnsweredBy values that mean nobody was reached. "human" and "unknown" are not listed:
# "unknown" is usually a person who said nothing, and their keypress is what counts.
MACHINE_ANSWERS = frozenset(
    {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}
)


def message_outcome(status: str | None) -> Outcome | None:
    """Outcome for a MessageStatus; None for a word we do not know (keep it, ignore it)."""
    return MESSAGE_STATUS.get((status or "").strip().lower())


def call_outcome(call_status: str | None, answered_by: str | None = None) -> Outcome | None:
    """Outcome for a CallStatus; an answered or completed call taken by a machine is MACHINE."""
    outcome = CALL_STATUS.get((call_status or "").strip().lower())
    if outcome in (Outcome.ANSWERED, Outcome.COMPLETED) and is_machine(answered_by):
        return Outcome.MACHINE
    return outcome


def is_machine(answered_by: str | None) -> bool:
    """True when AnsweredBy names an answering machine or a fax."""
    return (answered_by or "").strip().lower() in MACHINE_ANSWERS


async def create_with_twilio(kind: str, to: str, create: Callable[[], Awaitable[T]]) -> T:
    """Run one Twilio create call; any failure becomes the ChannelError its code maps to, and
    an answer without a SID is ambiguous (accepted, so it may go out: never resend blindly)."""
    with capture_response() as info:
        try:
            created = await create()
        except Exception as exc:
            error = channel_error(exc, info)
            log.warning(
                "%s to %s failed: code=%s permanent=%s ambiguous=%s",
                kind,
                mask_phone(to),
                error.code,
                error.permanent,
                error.ambiguous,
            )
            raise error from exc
    if not getattr(created, "sid", None):
        raise ChannelError(
            f"Twilio accepted the {kind} without a SID", permanent=False, ambiguous=True
        )
    return created
