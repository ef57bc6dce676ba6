"""Cron expressions as operators write them (standard crontab), evaluated in Asia/Tokyo.

APScheduler computes the fire times. One trap handled here: APScheduler 3 numbers weekdays
from Monday = 0, while crontab uses Sunday = 0 (and 7), so "0 10 * * 1" would fire on Tuesdays.
Numeric weekdays are translated to names first.
"""

from __future__ import annotations

import re
from datetime import datetime

from apscheduler.triggers.cron import CronTrigger

TIMEZONE = "Asia/Tokyo"
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CronError(ValueError):
    """The expression is not a valid five-field crontab line."""


def _weekday_names(field: str) -> str:
    def name(match: re.Match[str]) -> str:
        number = int(match.group(0))
        if number > 7:
            raise CronError(f"day of week {number} is out of range 0-7")
        return _DAYS[number]

    # Only numbers that are days, not step values after "/".
    return re.sub(r"(?<![/\d])\d+", name, field)


def trigger(expression: str, timezone: str = TIMEZONE) -> CronTrigger:
    fields = expression.split()
    if len(fields) != 5:
        raise CronError(f"expected 5 fields (minute hour day month weekday), got {expression!r}")
    minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_weekday_names(weekday),
            timezone=timezone,
        )
    except CronError:
        raise
    except ValueError as exc:
        raise CronError(f"invalid cron expression {expression!r}: {exc}") from None


def next_fire_times(expression: str, after: datetime, count: int = 5) -> list[datetime]:
    """The next `count` fire times strictly after `after`."""
    cron = trigger(expression)
    times: list[datetime] = []
    previous: datetime | None = None
    now = after
    while len(times) < count:
        fire = cron.get_next_fire_time(previous, now)
        if fire is None:
            break
        if fire <= after:
            now = fire
            previous = fire
            continue
        times.append(fire)
        previous, now = fire, fire
    return times


def fire_times_between(expression: str, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time t with start <= t <= end."""
    cron = trigger(expression)
    times: list[datetime] = []
    fire = cron.get_next_fire_time(None, start)
    while fire is not None and fire <= end:
        times.append(fire)
        fire = cron.get_next_fire_time(fire, fire)
        if times and fire == times[-1]:
            break
    return times
