"""Whether an SMS fits the segments its wording is written for, and if not, by how much.

The built-in wording (templates/messages/*/sms.*.j2) is written so that, with realistic values
and a public URL of up to PUBLIC_URL_ALLOWANCE characters, the Japanese SMS is one segment
with its link and the English and easy-Japanese ones two (issue 15): Twilio bills and
rate-limits per segment, so a second segment doubles the cost and the minutes the ward's SMS
wave takes. A long area name, a drill note or a long public URL can push it over; that is not
refused (the segment budget in catalog.toml is the ceiling that is), but the operator is told,
in the issue command, the API and the console preview, how many characters over it is and how
many of them the public URL accounts for.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.messages.context import RenderedMessage
from relay.messages.segments import (
    GSM7_PART,
    GSM7_SINGLE,
    UCS2_PART,
    UCS2_SINGLE,
    sms_encoding,
    sms_units,
)

TARGET_SEGMENTS = {"ja": 1, "en": 2, "ja-easy": 2}
PUBLIC_URL_ALLOWANCE = 30
_LANGUAGE_NAMES = {"ja": "日本語", "en": "英語", "ja-easy": "やさしい日本語"}


def capacity(segments: int, text: str) -> int:
    """Characters (UCS-2 code units or GSM-7 septets) `segments` segments hold for `text`'s
    encoding."""
    if sms_encoding(text) == "GSM-7":
        return GSM7_SINGLE if segments == 1 else GSM7_PART * segments
    return UCS2_SINGLE if segments == 1 else UCS2_PART * segments


@dataclass(frozen=True)
class LengthNote:
    """An SMS longer than its target: `over_by` characters beyond what `target` segments
    hold, `url_over_by` of them from a public URL longer than the wording allows."""

    language: str
    segments: int
    target: int
    over_by: int
    url_over_by: int

    def ja(self) -> str:
        name = _LANGUAGE_NAMES.get(self.language, self.language)
        text = (
            f"{name}のSMSが{self.segments}通分になります（{self.target}通分を{self.over_by}字超過"
        )
        if self.url_over_by:
            text += f"。うち{self.url_over_by}字は公開URLが{PUBLIC_URL_ALLOWANCE}字を超える分"
        return text + "）"

    def en(self) -> str:
        text = (
            f"{self.language} SMS is {self.segments} segments, {self.over_by} characters over "
            f"{self.target} segment{'s' if self.target > 1 else ''}"
        )
        if self.url_over_by:
            text += (
                f" ({self.url_over_by} of them because the public URL is longer than "
                f"{PUBLIC_URL_ALLOWANCE} characters)"
            )
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "language": self.language,
            "segments": self.segments,
            "target": self.target,
            "over_by": self.over_by,
            "url_over_by": self.url_over_by,
            "message": self.en(),
            "message_ja": self.ja(),
        }


def length_note(message: RenderedMessage, public_url: str) -> LengthNote | None:
    """None if `message` (an SMS) fits its language's target."""
    target = TARGET_SEGMENTS.get(message.language, 1)
    if message.channel != "sms" or message.segments <= target:
        return None
    over_by = sms_units(message.text) - capacity(target, message.text)
    url_excess = max(0, len(public_url) - PUBLIC_URL_ALLOWANCE)
    return LengthNote(message.language, message.segments, target, over_by, min(url_excess, over_by))
