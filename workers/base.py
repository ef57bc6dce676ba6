"""The one task base class: process-wide runtime, retries with backoff and jitter."""

from __future__ import annotations

import random
from typing import Any

from celery import Task

from relay.delivery.runtime import Runtime, get_runtime
from relay.logs import log_context

BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 120.0


class RelayTask(Task):  # type: ignore[misc]
    abstract = True
    max_retries = 30

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Every line logged while the task runs names the task and what it works on.
        context = {k: kwargs[k] for k in ("alert_id", "run_id", "channel") if k in kwargs}
        with log_context(task_id=self.request.id, **context):
            return super().__call__(*args, **kwargs)

    @property
    def runtime(self) -> Runtime:
        return get_runtime()

    def backoff(self, retry_after: float | None = None) -> float:
        """Seconds before the next try: the provider's Retry-After if it gave one, else
        exponential backoff with full jitter so retries from many batches do not align."""
        if retry_after is not None:
            return retry_after + random.uniform(0, 1)
        ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**self.request.retries)
        return random.uniform(ceiling / 2, ceiling)

    def retry_later(self, retry_after: float | None = None, **kwargs: Any) -> None:
        raise self.retry(countdown=self.backoff(retry_after), **kwargs)
