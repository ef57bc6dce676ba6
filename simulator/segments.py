"""SMS segment counting, the way Twilio bills and rate-limits a message body.

A body that fits the GSM-7 alphabet travels in 7-bit septets: 160 in one segment, 153 per
segment once split (the user-data header takes the rest). Anything else — Japanese always — is
UCS-2: 70 UTF-16 code units in one segment, 67 per segment when split.
"""

from __future__ import annotations

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Escaped characters: each costs two septets (ESC + the character).
GSM7_EXTENDED = frozenset("\f^{}\\[~]|€")


def count_segments(body: str) -> int:
    """Segments Twilio would send `body` in (at least 1)."""
    septets = 0
    for char in body:
        if char in GSM7_BASIC:
            septets += 1
        elif char in GSM7_EXTENDED:
            septets += 2
        else:
            return _split(len(body.encode("utf-16-le")) // 2, single=70, part=67)
    return _split(septets, single=160, part=153)


def is_gsm7(body: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENDED for char in body)


def _split(units: int, *, single: int, part: int) -> int:
    if units <= single:
        return 1
    return -(-units // part)
