"""Whether the Redis broker holds any task at all: queued, reserved by a worker or waiting for
its retry time (kombu keeps those in the `unacked` hash). The scheduler uses it to notice that
tasks were lost (relay.delivery.recovery)."""

from __future__ import annotations

import logging
import time

import redis

from relay.config import Settings
from relay.delivery.outbox import QUEUES

log = logging.getLogger(__name__)

# kombu's Redis transport: one list per queue and priority step, one hash of unacked tasks.
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (0, 3, 6, 9)


def broker_empty(settings: Settings) -> bool | None:
    """True when the broker holds no task; None when it cannot tell (not Redis, unreachable)."""
    if not settings.broker_url.startswith(("redis://", "rediss://")):
        return None
    prefix = settings.broker_prefix
    keys = [
        prefix + (queue if step == 0 else f"{queue}{_PRIORITY_SEP}{step}")
        for queue in QUEUES
        for step in _PRIORITY_STEPS
    ]
    try:
        client = redis.Redis.from_url(
            settings.broker_url, socket_timeout=2, socket_connect_timeout=2
        )
        with client.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.llen(key)
            pipe.hlen(prefix + "unacked")
            counts = pipe.execute()
        client.close()
    except redis.RedisError:
        return None
    return not any(counts)


class LostTaskWatch:
    """Says "requeue" once the broker was seen empty twice, `settle` seconds apart: a task is
    briefly in neither the queue nor the unacked hash while a worker takes it."""

    def __init__(self, settle: float = 5.0) -> None:
        self.settle = settle
        self._empty_since: float | None = None

    def lost(self, empty: bool | None, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if not empty:
            self._empty_since = None
            return False
        if self._empty_since is None:
            self._empty_since = now
            return False
        if now - self._empty_since < self.settle:
            return False
        self._empty_since = None
        return True
