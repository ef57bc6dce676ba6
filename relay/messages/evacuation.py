"""Evacuation level labels (警戒レベル), valid on a given date.

The names changed on 2021-05-20 with the revised Disaster Countermeasures Basic Act: 避難勧告
was abolished and level 4 became 避難指示 alone. An alert must carry the label that was in force
on its own date, or an old drill report would be rewritten in today's words (SPEC 3).
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")
REVISION_DATE = date(2021, 5, 20)
LEVELS = (3, 4, 5)

_BEFORE: dict[str, dict[int, str]] = {
    "ja": {
        3: "避難準備・高齢者等避難開始",
        4: "避難勧告・避難指示（緊急）",
        5: "災害発生情報",
    },
    "en": {
        3: "Evacuation preparation; evacuation of elderly etc. begins",
        4: "Evacuation advisory / evacuation instruction (emergency)",
        5: "Disaster occurrence information",
    },
    "ja-easy": {
        3: "避難準備(ひなん じゅんび)・高齢者等避難開始(こうれいしゃとう ひなん かいし)",
        4: "避難勧告(ひなん かんこく)・避難指示(ひなん しじ)",
        5: "災害発生情報(さいがい はっせい じょうほう)",
    },
}
_SINCE: dict[str, dict[int, str]] = {
    "ja": {3: "高齢者等避難", 4: "避難指示", 5: "緊急安全確保"},
    "en": {
        3: "Evacuation of elderly etc.",
        4: "Evacuation instruction",
        5: "Emergency safety measures",
    },
    "ja-easy": {
        3: "高齢者等避難(こうれいしゃとう ひなん)",
        4: "避難指示(ひなん しじ)",
        5: "緊急安全確保(きんきゅう あんぜん かくほ)",
    },
}


def tokyo_date(on: date) -> date:
    """The calendar date in Tokyo: 2021-05-19T15:00Z is already the 20th there."""
    if isinstance(on, datetime):
        if on.tzinfo is None:
            raise ValueError("a naive datetime has no date in Tokyo; pass an aware one")
        return on.astimezone(TOKYO).date()
    return on


def evacuation_label(level: int, on: date, language: str = "ja") -> str:
    """The official name of evacuation `level` (3–5) on `on` (a date, or an aware datetime
    taken in Asia/Tokyo), in `language` (unknown languages get Japanese)."""
    if isinstance(level, bool) or level not in LEVELS:
        raise ValueError(f"evacuation level must be 3, 4 or 5, not {level!r}")
    table = _SINCE if tokyo_date(on) >= REVISION_DATE else _BEFORE
    return table.get(language, table["ja"])[level]
