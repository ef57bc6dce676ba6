"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file (no server to install),
told what Redis is told through transport options — but in code, because that transport hands
every option to `create_engine()`, which refuses the ones it does not know (FINDINGS:
embedded mode; the worker crashed at start on Redis's options and nothing was ever sent).

- Queues in the listed order: kombu's virtual channels poll their queues round robin, so a
  real alert waited behind a drill's batches; here every poll tries `alerts` first, then
  `exercises` (what `queue_order_strategy="priority"` does on Redis).
- Polled every 0.1 s instead of kombu's 1 s: a task waits at most that long to be taken
  (measured ~9 tasks/s at 1 s, ~50/s at 0.02-0.05 s); an idle worker costs a few SQLite reads
  a second.
"""

from __future__ import annotations

from queue import Empty
from typing import Any

from kombu.transport import sqlalchemy
from kombu.utils.scheduling import FairCycle

POLLING_INTERVAL_S = 0.1


class _InOrder(FairCycle):
    """Every get starts from the first queue: the next task comes from the first queue that
    has one, in the order the worker consumes them (`--queues=alerts,exercises`)."""

    def get(self, callback: Any, **kwargs: Any) -> Any:
        self.pos = 0
        return super().get(callback, **kwargs)


class Channel(sqlalchemy.Channel):
    def _reset_cycle(self) -> None:
        self._cycle = _InOrder(self._get_and_deliver, self._active_queues, Empty)


class Transport(sqlalchemy.Transport):
    Channel = Channel
    polling_interval = POLLING_INTERVAL_S


# For Celery's `broker_transport` (a "module:Class" path kombu resolves itself).
TRANSPORT = f"{__name__}:Transport"
