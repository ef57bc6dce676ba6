"""Times are stored in UTC and shown in Asia/Tokyo."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")


def local(moment: datetime, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return moment.astimezone(TOKYO).strftime(fmt)
