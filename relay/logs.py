"""Structured logs: one JSON object per line, with the alert and delivery being worked on.

Every process (`relay serve`, `relay worker`, `relay scheduler`) calls `configure` once. Whatever
a library or our own code logs passes through `scrub`, so a phone number, email address, link
token or auth token never reaches a log file in full, even inside a provider's error message.
`log_context` adds fields (alert_id, delivery_id, channel...) to every line logged inside it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from zoneinfo import ZoneInfo

from channels.masking import scrub

TOKYO = ZoneInfo("Asia/Tokyo")
# Fields a caller may pass with `extra=` as well as through `log_context`.
CONTEXT_FIELDS = ("alert_id", "delivery_id", "recipient_id", "channel", "run_id", "task_id")

_context: ContextVar[dict[str, object] | None] = ContextVar("relay_log_context", default=None)


def current_context() -> dict[str, object]:
    return dict(_context.get() or {})


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add `fields` to every log line written inside the block (this thread or task only)."""
    token = _context.set({**current_context(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, TOKYO).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        entry.update(current_context())
        for field in CONTEXT_FIELDS:
            if field in record.__dict__:
                entry[field] = record.__dict__[field]
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class ScrubbingTextFormatter(logging.Formatter):
    """For people reading a terminal: the usual text line, masked the same way."""

    def format(self, record: logging.LogRecord) -> str:
        context = current_context()
        context.update({f: record.__dict__[f] for f in CONTEXT_FIELDS if f in record.__dict__})
        line = super().format(record)
        if context:
            line += " " + " ".join(f"{k}={v}" for k, v in context.items())
        return scrub(line)


def configure(log_format: str = "json", level: str = "INFO") -> None:
    """Route every logger through one stderr handler in the chosen format."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        text = "%(asctime)s %(levelname)s %(name)s %(message)s"
        handler.setFormatter(ScrubbingTextFormatter(text))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # Python warnings become log lines, in the same format
    # Libraries that log every request at INFO would drown the relay's own lines.
    for noisy in ("httpx", "twilio.http_client", "aiosmtplib", "apscheduler.executors.default"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
