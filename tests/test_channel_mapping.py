"""Twilio's words mapped to ours: error codes, status words, webhook signatures; log masking."""

from __future__ import annotations

import pytest
from multidict import MultiDict
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from channels.base import NOT_REACHED, ChannelError, Outcome
from channels.masking import mask_email, mask_phone, scrub
from channels.twilio_errors import (
    DEFAULT_RETRY_AFTER,
    call_outcome,
    channel_error,
    is_config_error,
    message_outcome,
)
from channels.twilio_http import ResponseInfo, TwilioTransportError, parse_retry_after
from channels.twilio_signature import verify_twilio_signature

URI = "/2010-04-01/Accounts/AC00/Messages.json"


def rest(status: int, code: int | None, msg: str = "") -> TwilioRestException:
    # twilio puts the HTTP status in `code` when the error body had none.
    return TwilioRestException(status, URI, msg, code if code is not None else status, "POST")


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [21211, 21614, 21610, 21612, 21408, 13224, 13223])
def test_recipient_errors_are_permanent(code: int) -> None:
    error = channel_error(rest(400, code, "refused"))
    assert (error.permanent, error.code, error.ambiguous) == (True, str(code), False)
    assert not is_config_error(error)


@pytest.mark.parametrize(("status", "code"), [(401, 20003), (401, None), (404, 20404)])
def test_credentials_errors_are_permanent_config_errors(status: int, code: int | None) -> None:
    error = channel_error(rest(status, code))
    assert error.permanent
    assert is_config_error(error)


def test_429_is_transient_with_the_providers_retry_after() -> None:
    error = channel_error(rest(429, 20429), ResponseInfo(status=429, retry_after=7.5))
    assert (error.permanent, error.code, error.retry_after) == (False, "20429", 7.5)


def test_429_without_retry_after_gets_the_default() -> None:
    assert channel_error(rest(429, 20429)).retry_after == DEFAULT_RETRY_AFTER
    assert channel_error(rest(429, None), ResponseInfo(429, None)).code == "http-429"


@pytest.mark.parametrize(("status", "code"), [(500, 20500), (502, None), (503, 20503)])
def test_server_errors_are_transient(status: int, code: int | None) -> None:
    error = channel_error(rest(status, code))
    assert not error.permanent and not error.ambiguous
    assert error.retry_after is None


def test_unknown_4xx_is_permanent() -> None:
    assert channel_error(rest(400, 21604, "'To' phone number is required")).permanent


def test_transport_errors_are_ambiguous_only_once_the_request_left() -> None:
    refused = channel_error(TwilioTransportError("refused", sent=False, timeout=False))
    assert (refused.permanent, refused.ambiguous, refused.code) == (False, False, "network")
    reset = channel_error(TwilioTransportError("reset", sent=True, timeout=False))
    assert (reset.permanent, reset.ambiguous) == (False, True)
    hung = channel_error(TwilioTransportError("timeout", sent=True, timeout=True))
    assert (hung.permanent, hung.ambiguous, hung.code) == (False, True, "timeout")


def test_provider_messages_are_scrubbed_of_numbers() -> None:
    error = channel_error(rest(400, 21211, "Invalid 'To' Phone Number: +819012345678"))
    assert "+819012345678" not in str(error)
    assert "+81******5678" in str(error)


def test_unexpected_exception_is_transient() -> None:
    error = channel_error(RuntimeError("boom"))
    assert isinstance(error, ChannelError) and not error.permanent


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), (" 1.5 ", 1.5), ("-4", 0.0), ("soon", None), ("", None), (None, None)],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    seconds = parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT")
    assert seconds is not None and seconds > 0


# --- status words -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("accepted", Outcome.QUEUED),
        ("queued", Outcome.QUEUED),
        ("sending", Outcome.QUEUED),
        ("sent", Outcome.SENT),
        ("delivered", Outcome.DELIVERED),
        ("read", Outcome.DELIVERED),
        ("undelivered", Outcome.UNDELIVERED),
        ("failed", Outcome.FAILED),
        ("canceled", Outcome.FAILED),
        ("Delivered", Outcome.DELIVERED),
        ("receiving", None),
        ("", None),
        (None, None),
    ],
)
def test_message_status(status: str | None, outcome: Outcome | None) -> None:
    assert message_outcome(status) == outcome


@pytest.mark.parametrize(
    ("status", "answered_by", "outcome"),
    [
        ("queued", None, Outcome.QUEUED),
        ("initiated", None, Outcome.QUEUED),
        ("ringing", None, Outcome.QUEUED),
        ("in-progress", "human", Outcome.ANSWERED),
        ("in-progress", "machine_start", Outcome.MACHINE),
        ("completed", None, Outcome.COMPLETED),
        ("completed", "human", Outcome.COMPLETED),
        ("completed", "unknown", Outcome.COMPLETED),
        ("completed", "machine_start", Outcome.MACHINE),
        ("completed", "machine_end_beep", Outcome.MACHINE),
        ("completed", "machine_end_silence", Outcome.MACHINE),
        ("completed", "machine_end_other", Outcome.MACHINE),
        ("completed", "fax", Outcome.MACHINE),
        ("busy", None, Outcome.BUSY),
        ("no-answer", None, Outcome.NO_ANSWER),
        ("failed", None, Outcome.FAILED),
        ("canceled", None, Outcome.FAILED),
        ("busy", "machine_start", Outcome.BUSY),  # AnsweredBy only matters once answered
        ("nonsense", None, None),
    ],
)
def test_call_status(status: str, answered_by: str | None, outcome: Outcome | None) -> None:
    assert call_outcome(status, answered_by) == outcome


def test_not_reached_outcomes_cover_the_failures() -> None:
    for word in ("undelivered", "failed"):
        assert message_outcome(word) in NOT_REACHED
    for word, by in (("busy", None), ("no-answer", None), ("completed", "fax")):
        assert call_outcome(word, by) in NOT_REACHED
    assert call_outcome("completed", "human") not in NOT_REACHED


# --- signatures ---------------------------------------------------------------------------------

URL = "https://relay.example.jp/webhooks/twilio/status?alert=42"
PARAMS = {"MessageSid": "SM123", "MessageStatus": "delivered", "To": "+819012345678"}


def sign(token: str, url: str, params: object) -> str:
    return str(RequestValidator(token).compute_signature(url, params))


def test_signature_valid() -> None:
    assert verify_twilio_signature(URL, PARAMS, sign("new", URL, PARAMS), ["new"])


def test_signature_during_token_rotation() -> None:
    old_signed = sign("old", URL, PARAMS)
    assert verify_twilio_signature(URL, PARAMS, old_signed, ["new", "old"])
    assert not verify_twilio_signature(URL, PARAMS, old_signed, ["new"])


def test_signature_with_repeated_keys() -> None:
    pairs = [
        ("CallSid", "CA1"),
        ("StatusCallbackEvent", "ringing"),
        ("StatusCallbackEvent", "answered"),
    ]
    multi = MultiDict(pairs)
    signature = sign("tok", URL, multi)
    assert verify_twilio_signature(URL, pairs, signature, ["tok"])
    assert verify_twilio_signature(URL, multi, signature, ["tok"])
    as_lists = {"CallSid": ["CA1"], "StatusCallbackEvent": ["ringing", "answered"]}
    assert verify_twilio_signature(URL, as_lists, signature, ["tok"])  # plain dict of lists
    # Dropping one of the repeated values changes the signature.
    assert not verify_twilio_signature(URL, pairs[:2], signature, ["tok"])


def test_signature_with_and_without_default_port() -> None:
    signature = sign("tok", "https://relay.example.jp:443/webhooks/twilio/sms", PARAMS)
    assert verify_twilio_signature(
        "https://relay.example.jp/webhooks/twilio/sms", PARAMS, signature, ["tok"]
    )


@pytest.mark.parametrize(
    ("url", "params", "signature"),
    [
        (URL, PARAMS, "forged+signature="),  # wrong signature
        (URL, {**PARAMS, "MessageStatus": "failed"}, None),  # tampered body
        ("https://relay.example.jp/webhooks/twilio/sms", PARAMS, None),  # wrong URL
        ("http://relay.example.jp/webhooks/twilio/status?alert=42", PARAMS, None),  # http
    ],
)
def test_signature_rejects_forgeries(
    url: str, params: dict[str, str], signature: str | None
) -> None:
    genuine = sign("tok", URL, PARAMS)
    assert not verify_twilio_signature(url, params, signature or genuine, ["tok"])


@pytest.mark.parametrize("signature", [None, "", "ü非ASCII", "x" * 10_000])
def test_signature_missing_or_garbage_header(signature: str | None) -> None:
    assert not verify_twilio_signature(URL, PARAMS, signature, ["tok"])


def test_signature_never_raises() -> None:
    genuine = sign("tok", URL, PARAMS)
    assert not verify_twilio_signature("http://[::1", PARAMS, genuine, ["tok"])  # bad URL
    assert not verify_twilio_signature("http://h:notaport/", PARAMS, genuine, ["tok"])
    assert not verify_twilio_signature(URL, PARAMS, genuine, [])  # no token configured
    assert not verify_twilio_signature(URL, PARAMS, genuine, [""])
    assert not verify_twilio_signature(URL, None, genuine, ["tok"])
    assert verify_twilio_signature(URL, None, sign("tok", URL, {}), ["tok"])


# --- masking ------------------------------------------------------------------------------------


def test_mask_phone() -> None:
    assert mask_phone("+819012345678") == "+81******5678"
    assert mask_phone("+81452223333") == "+81*****3333"
    assert mask_phone("12345") == "*****"
    assert mask_phone(None) == "<none>"


def test_mask_email() -> None:
    assert mask_email("leader@example.jp") == "l*****@example.jp"
    assert mask_email("a@example.jp") == "*@example.jp"
    assert mask_email("no-at-sign") == "**********"


def test_scrub_masks_numbers_and_addresses_in_text() -> None:
    text = scrub("To +819012345678 or 090-1234-5678, mail taro@example.jp, code 21211 (2024-05-20)")
    assert "+819012345678" not in text and "090-1234-5678" not in text
    assert "taro@" not in text
    assert "21211" in text and "2024-05-20" in text
