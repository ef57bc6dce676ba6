"""Status callbacks stored by group commit (SMS and call status).

One transaction per callback made a burst of callbacks cost a connection, a row lock and a
commit each, with the web threads queueing for the connection pool. Here the handlers hand
their event to one writer thread per app, which stores whatever is waiting (up to MAX_BATCH)
in one transaction and then wakes each handler with its own result. A handler still answers
Twilio only after its event is committed: batching changes the cost, not the promise. The
handlers await that on the event loop: a pool thread per waiting callback cost the server more
CPU than the writer's own work per callback (ops/bench/ANALYSIS.md, section 6).

One writer per process also keeps SQLite (the embedded demo) to the single writer it allows.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session
from starlette.applications import Starlette

from relay.db import engine_for
from relay.delivery.tracking import ProviderEvent, apply_events
from relay.models import Delivery

log = logging.getLogger(__name__)

# Large enough to absorb a burst in a few commits, small enough that one batch's locks and
# its insert stay short.
MAX_BATCH = 200
# While callbacks keep coming the writer keeps its connection: a pool checkout costs a
# round trip (pre-ping) per batch. Idle this long, it gives the connection back.
IDLE_SECONDS = 1.0

_Item = tuple[ProviderEvent, "Future[Delivery | None]"]
_start_lock = threading.Lock()


class StatusWriter:
    """The writer thread and the queue in front of it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._storing = 0
        self._thread = threading.Thread(target=self._run, name="status-writer", daemon=True)
        self._thread.start()

    def submit(self, event: ProviderEvent) -> Future[Delivery | None]:
        """Hand the event over; the future is done once it is committed, or failed."""
        future: Future[Delivery | None] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the status writer has stopped")
            self._queue.put((event, future))
        return future

    def queued(self) -> int:
        """Events waiting for the writer to take them (not those it is storing)."""
        return self._queue.qsize()

    def storing(self) -> int:
        """Events in the batch being stored now."""
        return self._storing

    def stop(self) -> None:
        """Store what was handed over so far, then end the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        last = False
        while not last:
            batch, last = self._next_batch()
            if batch:
                self._storing = len(batch)
                self._store(batch)
                self._storing = 0
        self._release()

    def _next_batch(self) -> tuple[list[_Item], bool]:
        """What is waiting, at least one item; True once the stop marker was taken."""
        batch: list[_Item] = []
        try:
            item = self._queue.get(timeout=IDLE_SECONDS)
        except queue.Empty:
            self._release()
            item = self._queue.get()
        while item is not None:
            batch.append(item)
            if len(batch) >= MAX_BATCH:
                return batch, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True

    def _store(self, batch: list[_Item]) -> None:
        try:
            results = self._commit([event for event, _ in batch])
        except Exception as exc:
            # A deadlock, a killed connection or one event the database refuses: each event
            # gets its own transaction, so only what really cannot be stored fails.
            log.warning(
                "status batch of %d failed (%s); storing its events one by one",
                len(batch),
                type(exc).__name__,
            )
            for item in batch:
                self._store_alone(item)
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)

    def _store_alone(self, item: _Item) -> None:
        event, future = item
        try:
            (result,) = self._commit([event])
        except Exception as exc:
            future.set_exception(exc)  # the handler raises it: a 500, and Twilio retries
        else:
            future.set_result(result)

    def _commit(self, events: Sequence[ProviderEvent]) -> list[Delivery | None]:
        if self._connection is None:
            self._connection = self._engine.connect()
        try:
            with Session(self._connection, expire_on_commit=False) as session, session.begin():
                return apply_events(session, events, datetime.now(UTC))
        except Exception:
            # The connection may be what failed: the next transaction starts from the pool,
            # which checks it.
            self._release()
            raise

    def _release(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


async def store(app: Starlette, event: ProviderEvent) -> Delivery | None:
    """Store the event with whatever else is waiting; return once it is committed. Raises
    what storing it raised."""
    # Shielded: a request abandoned half-way must not cancel an event the writer already holds.
    return await asyncio.shield(asyncio.wrap_future(writer(app).submit(event)))


def writer(app: Starlette) -> StatusWriter:
    """The app's writer, started on first use: servers run with lifespan off too."""
    current: StatusWriter | None = getattr(app.state, "status_writer", None)
    if current is not None:
        return current
    with _start_lock:
        current = getattr(app.state, "status_writer", None)
        if current is None:
            current = StatusWriter(engine_for(app.state.settings.database_url))
            app.state.status_writer = current
        return current


def stop(app: Starlette) -> None:
    """Stop the app's writer, if it has one, after it stored what it was handed."""
    with _start_lock:
        current: StatusWriter | None = getattr(app.state, "status_writer", None)
        app.state.status_writer = None
    if current is not None:
        current.stop()
