"""SMS segment counting: how many parts a body travels in, and so what it costs.

Twilio bills and rate-limits SMS per segment, and every extra part is one more chance for a
handset to show a message half-arrived; SPEC 4.1 asks for a budget reported before sending.

GSM-7 bodies: 160 septets in one segment, 153 per part once split (the concatenation header
takes the rest); the extension characters cost two septets (ESC + char). Anything else is
UCS-2: 70 UTF-16 code units in one segment, 67 per part; astral characters (emoji, rare
kanji) are surrogate pairs and cost two. Encoders never split an escape sequence or a
surrogate pair across two parts, so parts are packed greedily — at a boundary that can take
one more segment than dividing the total would (Twilio's own segment calculator does the same).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

Encoding = Literal["GSM-7", "UCS-2"]


def sms_encoding(text: str) -> Encoding:
    if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text):
        return "GSM-7"
    return "UCS-2"


def _sizes(text: str, encoding: Encoding) -> Iterable[int]:
    if encoding == "GSM-7":
        return (2 if c in GSM7_EXTENDED else 1 for c in text)
    return (2 if ord(c) > 0xFFFF else 1 for c in text)


def sms_units(text: str) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) the body takes."""
    return sum(_sizes(text, sms_encoding(text)))


def sms_segments(text: str) -> int:
    """Segments `text` is sent in; at least 1 (an empty body still costs one). Never raises."""
    encoding = sms_encoding(text)
    single, part = (GSM7_SINGLE, GSM7_PART) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_PART)
    if encoding == "UCS-2" and len(text.encode("utf-16-le", "surrogatepass")) == 2 * len(text):
        # No surrogate pair, so a part can end anywhere: the count is arithmetic. Every
        # recipient's SMS is counted when an alert is planned; this is the common case.
        return 1 if len(text) <= single else -(-len(text) // part)
    sizes = list(_sizes(text, encoding))
    if sum(sizes) <= single:
        return 1
    segments, used = 1, 0
    for size in sizes:
        if used + size > part:  # this character starts the next part, whole
            segments += 1
            used = 0
        used += size
    return segments
