"""Durations as operators write them: 90s, 15m, 1h, 1h30m."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Longer than any deadline or delay the ward sets, short enough that now + it is a date:
# a mistyped 99999999999999999999d is refused here instead of overflowing later.
LONGEST = timedelta(days=366)


def parse_duration(text: str) -> timedelta:
    """The duration in `text`; ValueError saying why not (unreadable, or over LONGEST)."""
    cleaned = text.strip().lower()
    if len(cleaned) > 40:  # no duration staff write is longer; int() of 5,000 digits refuses
        raise ValueError(f"cannot read duration {text.strip()[:40]!r}...; write e.g. 15m")
    if cleaned.isdigit():
        seconds = int(cleaned) * 60  # a bare number is minutes, as staff say it
    else:
        parts = _PART.findall(cleaned)
        if not parts or _PART.sub("", cleaned).strip():
            raise ValueError(f"cannot read duration {text!r}; write e.g. 90s, 15m, 1h30m")
        seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds > LONGEST.total_seconds():
        raise ValueError(f"duration {text.strip()[:40]!r} is too long: at most {LONGEST.days}d")
    return timedelta(seconds=seconds)
