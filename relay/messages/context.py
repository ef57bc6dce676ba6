"""What the composer is given about one message (MessageContext) and what it hands back
(RenderedMessage), plus the per-language words it adds itself: exercise/test markers, the
ward's name and the local time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from relay.messages.catalog import LANGUAGES

TOKYO = ZoneInfo("Asia/Tokyo")
STATUSES = ("Actual", "Exercise", "Test")
Channel = Literal["sms", "voice", "email"]
CHANNELS: tuple[Channel, ...] = ("sms", "voice", "email")

# Written markers: every SMS, subject, email text and HTML of a non-real alert starts with
# one (SPEC 4.1), in every language, so a screenshot passed around can never be mistaken for
# a real alert. English adds a word for readers who cannot read 訓練.
MARKERS: dict[str, dict[str, str]] = {
    "Actual": {"ja": "", "en": "", "ja-easy": ""},
    "Exercise": {"ja": "【訓練】", "en": "【訓練】DRILL ", "ja-easy": "【訓練】(くんれん)"},
    "Test": {"ja": "【テスト】", "en": "【テスト】TEST ", "ja-easy": "【テスト】"},
}
# Spoken markers: text-to-speech reads 【】 as nothing, so a call says it in words, at the
# start and again at the end (someone may pick up late or hang up early).
SPOKEN_MARKERS: dict[str, dict[str, str]] = {
    "Actual": {"ja": "", "en": "", "ja-easy": ""},
    "Exercise": {
        "ja": "これは訓練です。",
        "en": "This is a drill.",
        "ja-easy": "これは くんれん です。",
    },
    "Test": {
        "ja": "これはテストです。",
        "en": "This is a test.",
        "ja-easy": "これは テスト です。",
    },
}
WARD_NAMES = {
    "ja": "金沢区役所",
    "en": "Kanazawa Ward Office",
    "ja-easy": "金沢区役所(かなざわ くやくしょ)",
}
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


@dataclass(frozen=True)
class MessageContext:
    """Per-message facts from the issuer. `ack_url` is None for voice (a call acknowledges by
    key); `two_way_sms` says whether SMS replies come back on this deployment's route;
    `org_name`/`contact_name` are the recipient's."""

    status: str
    sent_at: datetime
    reference: str
    ack_url: str | None
    two_way_sms: bool
    org_name: str
    contact_name: str
    ward_name: str | None = None  # None: the ward office's name in the message's language

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {self.status!r}")
        if self.sent_at.tzinfo is None:
            raise ValueError("sent_at must be an aware datetime")


@dataclass(frozen=True)
class RenderedMessage:
    """One message ready to send. `subject` and `html` only for email; `segments` counts SMS
    segments (0 for voice and email); `language` is the one actually used (after fallback)."""

    event: str
    channel: str
    language: str
    subject: str | None
    text: str
    html: str | None
    segments: int


def resolve_language(language: str | None) -> str:
    """ja, en or ja-easy; regional tags map to their language and anything else to Japanese,
    the language every recipient of a Japanese ward can be assumed to read."""
    tag = (language or "").strip().lower().replace("_", "-")
    if tag in LANGUAGES:
        return tag
    if tag == "en" or tag.startswith("en-"):
        return "en"
    return "ja"


def local_time(moment: datetime, language: str) -> str:
    """`moment` in Asia/Tokyo, as people write it: 11月29日 10:05 / 29 Nov 10:05 JST."""
    t = moment.astimezone(TOKYO)
    if language == "en":
        return f"{t.day} {_MONTHS[t.month - 1]} {t:%H:%M} JST"
    if language == "ja-easy":
        return f"{t.month}月{t.day}日 {t.hour}時{t.minute}分"
    return f"{t.month}月{t.day}日 {t:%H:%M}"
