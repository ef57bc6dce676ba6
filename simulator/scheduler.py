"""Simulated time: delayed jobs, and knowing when none are left.

Jobs wait as loop timers, not as sleeping tasks, so 20,000 accepted messages cost 20,000 small
timer handles rather than 20,000 coroutine frames; a task exists only while a job runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class Scheduler:
    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.errors: list[str] = []  # jobs that raised: a simulator bug, tests should see it
        self._pending = 0
        self._idle: asyncio.Event | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        return self._pending

    def real(self, simulated_seconds: float) -> float:
        return max(0.0, simulated_seconds) / self.speed

    async def sleep(self, simulated_seconds: float) -> None:
        await asyncio.sleep(self.real(simulated_seconds))

    def later(self, simulated_seconds: float, job: Job) -> None:
        """Run `job` after a simulated delay; counts as pending until it has finished."""
        self._inc()
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            assert handle is not None
            self._timers.discard(handle)
            task = loop.create_task(self._run(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        handle = loop.call_later(self.real(simulated_seconds), fire)
        self._timers.add(handle)

    def now(self, job: Job) -> None:
        self.later(0.0, job)

    async def wait_idle(self, timeout: float) -> None:
        """Return once nothing is scheduled or running; TimeoutError after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while self._pending:
                await self._event().wait()

    async def close(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending = 0
        self._event().set()

    async def _run(self, job: Job) -> None:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("simulator job failed")
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self._dec()

    def _event(self) -> asyncio.Event:
        if self._idle is None:
            self._idle = asyncio.Event()
            if not self._pending:
                self._idle.set()
        return self._idle

    def _inc(self) -> None:
        self._pending += 1
        self._event().clear()

    def _dec(self) -> None:
        self._pending -= 1
        if self._pending <= 0:
            self._pending = 0
            self._event().set()
