"""Failed sign-ins per user name: after 5 within 15 minutes, that name is refused for the rest
of the window without checking the password, so guessing costs a guesser time and costs the
server no scrypt. Kept in the web process's memory (one per app): several web processes each
allow 5, which still bounds guessing; a restart forgets, which errs on letting staff in."""

from __future__ import annotations

import threading
import time
from collections import deque

LIMIT = 5
WINDOW_S = 15 * 60


class SignInThrottle:
    def __init__(self, limit: int = LIMIT, window_s: float = WINDOW_S) -> None:
        self.limit, self.window_s = limit, window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and now - failures[0] > self.window_s:
            failures.popleft()
        return failures

    def blocked(self, name: str, now: float | None = None) -> bool:
        with self._lock:
            return len(self._recent(name.casefold(), now or time.monotonic())) >= self.limit

    def failed(self, name: str, now: float | None = None) -> None:
        at = now or time.monotonic()
        with self._lock:
            self._recent(name.casefold(), at).append(at)
            if len(self._failures) > 10_000:  # a flood of made-up names: forget the oldest
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name.casefold(), None)
