"""Masking for log lines: enough to tell recipients apart, not enough to call or mail them."""

from __future__ import annotations

import re


def mask_phone(number: str | None) -> str:
    """'+819012345678' -> '+81******5678': the country code and the last four digits stay."""
    if not number:
        return "<none>"
    text = number.strip()
    plus = "+" if text.startswith("+") else ""
    digits = text[len(plus) :]
    if len(digits) <= 6:
        # Too short to keep a prefix and a suffix and still hide something.
        return plus + "*" * len(digits)
    # Country code length varies (1-3 digits); two is right for Japan (+81) and harmless
    # elsewhere, since the suffix is what operators match on.
    return plus + digits[:2] + "*" * (len(digits) - 6) + digits[-4:]


def mask_email(address: str | None) -> str:
    """'leader@example.jp' -> 'l*****@example.jp': the first letter and the domain stay."""
    if not address:
        return "<none>"
    local, at, domain = address.strip().rpartition("@")
    if not at:
        return "*" * len(domain)
    if len(local) <= 1:
        return "*" * len(local) + "@" + domain
    return local[0] + "*" * (len(local) - 1) + "@" + domain


# E.164, and Japanese domestic forms (090-1234-5678, 09012345678).
_PHONE = re.compile(r"\+\d{7,15}|\b0\d{1,4}-\d{1,4}-\d{4}\b|\b0\d{9,10}\b")
_EMAIL = re.compile(r"[^\s<>\"'@,;:]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# Acknowledgement links (/a/<token>): whoever has the token can answer for the recipient.
_LINK = re.compile(r"(/a/)([A-Za-z0-9_\-]{4})[A-Za-z0-9_\-]{8,}")
# Twilio auth tokens and similar secrets: 32 hex digits standing alone (SIDs keep their prefix).
_HEX_SECRET = re.compile(r"(?<![A-Za-z0-9])[0-9a-f]{32}(?![A-Za-z0-9])")


def scrub(text: str) -> str:
    """Mask every phone number, email address, link token and auth token inside free text
    (e.g. a provider's error message, which often repeats the number it refused)."""
    text = _LINK.sub(r"\1\2****", text)
    text = _HEX_SECRET.sub("********", text)
    text = _PHONE.sub(lambda m: mask_phone(m.group().replace("-", "")), text)
    return _EMAIL.sub(lambda m: mask_email(m.group()), text)
