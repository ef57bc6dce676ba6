"""Structured logs: JSON lines with the alert and delivery in context, secrets masked."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from relay.logs import JsonFormatter, ScrubbingTextFormatter, log_context
from tests.conftest import SAMPLE_CSV
from tests.harness import Stack, Worker, wait_until

NUMBER = "+819012345678"
AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
LINK = "https://relay.example.jp/a/Qk9vT2xYc1R3aW5kb3dzOTg5"


def _log_through(formatter: logging.Formatter, message: str, *args: object, **extra: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("relay.test-logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(message, *args, extra=extra or None)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue().strip()


def test_a_json_line_names_its_alert_and_delivery_and_hides_secrets() -> None:
    with log_context(alert_id=42, channel="sms"):
        line = _log_through(
            JsonFormatter(),
            "send to %s failed (token %s, link %s)",
            NUMBER,
            AUTH_TOKEN,
            LINK,
            delivery_id=7,
        )
    entry = json.loads(line)
    assert entry["alert_id"] == 42 and entry["delivery_id"] == 7 and entry["channel"] == "sms"
    assert entry["level"] == "WARNING" and entry["time"].endswith("+09:00")
    assert "+81******5678" in entry["message"]
    for secret in (NUMBER, "9012345678", AUTH_TOKEN, "Qk9vT2xYc1R3aW5kb3dzOTg5"):
        assert secret not in line


def test_context_ends_with_its_block_and_text_lines_are_masked_too() -> None:
    with log_context(alert_id=1):
        pass
    entry = json.loads(_log_through(JsonFormatter(), "idle"))
    assert "alert_id" not in entry
    text = _log_through(ScrubbingTextFormatter("%(message)s"), "call 090-1234-5678", alert_id=3)
    assert text == "call 09*****5678 alert_id=3"


@pytest.mark.slow
def test_a_worker_logs_json_lines_about_the_alert_it_sends(db_url: str, tmp_path: Path) -> None:
    with Stack(db_url, tmp_path, workers=0, env={"RELAY_LOG_FORMAT": "json"}) as stack:
        log_path = tmp_path / "worker-json.log"
        worker = Worker(
            stack.env, log=log_path, args=["worker", "--concurrency=1", "--loglevel=INFO"]
        ).start()
        stack.workers.append(worker)
        stack.import_directory(SAMPLE_CSV)
        alert_id = stack.issue(
            audience="district:釜利谷",
            template="earthquake",
            variables={"intensity": "5強", "area": "金沢区全域"},
            mode="blast",
            channels=("sms",),
        )
        stack.wait_sent(alert_id)

        def batch_logged() -> bool:
            text = log_path.read_text(encoding="utf-8") if log_path.exists() else ""
            return "sms batch:" in text

        wait_until(batch_logged, 30, "the worker never logged its sms batch")
        lines = [ln for ln in log_path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        # Every logged line is one JSON object (Celery prints only "Warm shutdown" outside
        # logging, and only when it stops).
        entries = [json.loads(line) for line in lines]
        about_alert = [e for e in entries if e.get("alert_id") == alert_id]
        assert any(e["message"].startswith("sms batch:") for e in about_alert)
        assert all(e.get("task_id") for e in about_alert)
        addresses = [d.address for d in stack.deliveries(alert_id)]
        assert addresses
        text = "\n".join(lines)
        assert not [a for a in addresses if a in text or a.replace("+81", "0") in text]
