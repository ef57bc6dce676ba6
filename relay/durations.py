"""Durations as operators write them: 90s, 15m, 1h, 1h30m."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    cleaned = text.strip().lower()
    if cleaned.isdigit():
        return timedelta(minutes=int(cleaned))  # a bare number is minutes, as staff say it
    parts = _PART.findall(cleaned)
    if not parts or _PART.sub("", cleaned).strip():
        raise ValueError(f"cannot read duration {text!r}; write e.g. 90s, 15m, 1h30m")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))
