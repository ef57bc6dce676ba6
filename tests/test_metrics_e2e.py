"""`/metrics` after a demo-sized alert (the whole sample ward, ≈600 contacts): every series the
runbook and the Prometheus rules rely on is there, with figures that match the database."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from simulator import Behaviour, Population
from tests.conftest import SAMPLE_CSV
from tests.harness import Stack, wait_until

pytestmark = pytest.mark.slow


def _value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert match, f"{series} missing from /metrics"
    return float(match.group(1))


def test_metrics_after_a_ward_sized_alert(db_url: str, tmp_path: Path) -> None:
    answers = Behaviour(sms_reply="1", sms_reply_delay=2.0)
    with Stack(db_url, tmp_path, Population(default=answers, speed=20), sms_rate=100) as stack:
        stack.import_directory(SAMPLE_CSV)
        alert_id = stack.issue(
            template="earthquake",
            variables={"intensity": "5強", "area": "金沢区全域"},
            mode="blast",
            channels=("sms", "email"),
        )
        stack.wait_final(alert_id, timeout=180)
        wait_until(lambda: stack.status(alert_id)["acknowledged"] > 0, 60, "no acknowledgement")
        with httpx.Client(base_url=stack.public_url) as client:
            assert client.post("/webhooks/twilio/status", data={"x": "1"}).status_code == 403
            text = client.get("/metrics").text

        states = stack.states(alert_id, by_channel=True)
        for key, count in states.items():
            channel, state = key.split(":")
            assert _value(text, f'relay_deliveries{{channel="{channel}",state="{state}"}}') == count
        sent_sms = sum(1 for d in stack.deliveries(alert_id) if d.channel == "sms" and d.sent_at)
        assert sent_sms > 400  # every mobile in the sample directory
        inf = _value(text, 'relay_send_latency_seconds_bucket{channel="sms",le="+Inf"}')
        assert inf == sent_sms == _value(text, 'relay_send_latency_seconds_count{channel="sms"}')
        # ≈600 SMS at 100/s take seconds: most, not all, left within 10 s of the issue.
        within_10s = _value(text, 'relay_send_latency_seconds_bucket{channel="sms",le="10"}')
        assert 0 < within_10s <= inf
        assert _value(text, 'relay_queue_depth{queue="alerts"}') >= 0
        assert _value(text, 'relay_queue_depth{queue="exercises"}') >= 0
        # Sending 600 at 100/s means waiting for tokens, counted by every worker in Redis.
        assert _value(text, 'relay_rate_limit_waits_total{channel="sms"}') > 0
        assert _value(text, 'relay_rate_limit_wait_seconds_total{channel="sms"}') > 1.0
        assert _value(text, 'relay_acknowledgements{method="sms_reply"}') > 0
        assert _value(text, 'relay_webhook_rejections_total{path="/webhooks/twilio/status"}') >= 1
