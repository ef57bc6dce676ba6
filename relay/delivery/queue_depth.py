"""How many tasks wait on each queue, read from the broker itself (for /metrics).

Redis: the length of each queue's list (under the configured key prefix). The embedded broker
(kombu's SQLAlchemy transport on a SQLite file): the visible messages per queue. A memory
broker lives inside one process and cannot be read from another: no figures.
"""

from __future__ import annotations

import sqlite3

from relay.config import Settings
from relay.delivery.outbox import QUEUES


def queue_depths(settings: Settings) -> dict[str, int]:
    if settings.embedded_broker:
        return _sqlite_depths(settings)
    if settings.broker_url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(settings.broker_url, socket_timeout=2)
        try:
            return {q: int(client.llen(settings.broker_prefix + q)) for q in QUEUES}
        finally:
            client.close()
    return {}


def _sqlite_depths(settings: Settings) -> dict[str, int]:
    depths = dict.fromkeys(QUEUES, 0)
    path = settings.embedded_broker_path
    if not path.exists():
        return depths
    # Read-only: /metrics must never create or lock the worker's broker file.
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2) as conn:
        try:
            rows = conn.execute(
                "SELECT q.name, COUNT(m.id) FROM kombu_queue q "
                "LEFT JOIN kombu_message m ON m.queue_id = q.id AND m.visible "
                "GROUP BY q.name"
            ).fetchall()
        except sqlite3.OperationalError:  # the worker has not created its tables yet
            return depths
    depths.update({name: int(count) for name, count in rows if name in depths})
    return depths
