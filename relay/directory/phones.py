"""Phone numbers as Japanese users write them, stored as E.164 (SPEC 3, 6)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType

# Classification decides the channels: SMS only to mobiles; landlines and IP phones get calls.
_LINE_TYPES = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "landline",
    PhoneNumberType.VOIP: "ip_phone",
}


class PhoneNumberError(ValueError):
    """The text is not a usable Japanese (or international) phone number; says why."""


@dataclass(frozen=True)
class PhoneNumber:
    e164: str
    line_type: str  # mobile | landline | ip_phone


def parse_phone(text: str) -> PhoneNumber:
    """Parse `090-1234-5678`, `０９０１２３４５６７８`, `+81 90 ...`; region JP.

    Raises only PhoneNumberError, whatever the input.
    """
    # NFKC turns full-width digits, hyphens and plus signs into ASCII ones.
    cleaned = unicodedata.normalize("NFKC", text).strip()
    for dash in "‐‑‒–—―−ー":
        cleaned = cleaned.replace(dash, "-")
    if not cleaned:
        raise PhoneNumberError("empty phone number")
    if len(cleaned) > 40:
        raise PhoneNumberError("too long to be a phone number")
    try:
        number = phonenumbers.parse(cleaned, "JP")
    except phonenumbers.NumberParseException as exc:
        raise PhoneNumberError(f"not a phone number ({exc._msg})") from None
    except Exception as exc:  # phonenumbers has raised other types on odd input
        raise PhoneNumberError(f"not a phone number ({type(exc).__name__})") from None
    if not phonenumbers.is_valid_number(number):
        raise PhoneNumberError(f"not a valid number: {cleaned}")
    line_type = _LINE_TYPES.get(phonenumbers.number_type(number))
    if line_type is None:
        raise PhoneNumberError(f"not a number that can take calls or SMS: {cleaned}")
    return PhoneNumber(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        line_type=line_type,
    )
