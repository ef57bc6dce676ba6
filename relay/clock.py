"""The time the scheduler fires drills by: the wall clock, or the wall clock shifted.

`RELAY_CLOCK_FILE` names a file holding a number of seconds (fractional or negative) added to
the wall clock, re-read on every tick. A rehearsal in staging, or a test, writes it to move the
scheduler's notion of "now" — fire next Sunday's drill schedule today, or see what a scheduler
does after being down for an hour — without waiting, while several scheduler processes share
the same shifted time. Production leaves it unset. Only which fire times are due follows this
clock; alerts, deliveries and acknowledgements keep wall-clock times.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)


def now(clock_file: Path | None = None) -> datetime:
    current = datetime.now(UTC)
    if clock_file is None:
        return current
    try:
        shift = float(clock_file.read_text(encoding="utf-8").strip() or 0)
    except (OSError, ValueError) as exc:
        # A missing or half-written file must not stop the scheduler: use the wall clock.
        log.warning("clock file %s unreadable (%s); using the wall clock", clock_file, exc)
        return current
    return current + timedelta(seconds=shift)
