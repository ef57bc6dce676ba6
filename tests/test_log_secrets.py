"""No secret in any log: a whole alert (SMS, calls, email; replies, keypresses, link taps;
refusals, timeouts and retries) is run, everything every process logged is collected — the
worker and scheduler processes' output and the web app's own log lines, whatever their format —
and searched for every phone number of the directory (E.164, national, as written in the file),
the Twilio auth token, the secret key and every acknowledgement link token."""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from relay.db import transaction
from relay.logs import JsonFormatter
from relay.models import Delivery
from simulator import Behaviour, FaultRates, Population
from tests.conftest import SAMPLE_CSV
from tests.harness import Stack, Worker, wait_until

pytestmark = pytest.mark.slow

_TOKEN = re.compile(r"/a/([A-Za-z0-9_-]{12})(?![A-Za-z0-9_-])")


def _directory_numbers() -> set[str]:
    """Every phone number in the sample directory, in every form a log could carry it."""
    forms: set[str] = set()
    with SAMPLE_CSV.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            for column in ("mobile", "landline"):
                written = row[column].strip()
                if not written:
                    continue
                national = written.replace("-", "")
                e164 = "+81" + national[1:]
                forms |= {written, national, e164, e164[1:]}
    return forms


@pytest.fixture
def process_log() -> Iterator[io.StringIO]:
    """This process's log (the web app and everything in-process), as `relay serve` writes
    it: every logger at DEBUG through the relay's formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_no_phone_number_or_token_in_any_log(
    db_url: str, tmp_path: Path, process_log: io.StringIO
) -> None:
    population = Population(
        seed=3,
        speed=60,
        default=Behaviour(sms_reply="1", sms_reply_delay=20, digits="1", link_answer="1"),
        faults=FaultRates(http_500=0.05, timeout=0.02, reset=0.02, hang_seconds=11),
    )
    population.set("+819099990002", Behaviour(line="invalid"))  # 21211 repeats the number
    population.set("+819099990003", Behaviour(unsubscribed=True))
    population.set("fed-kanazawa-1@example.jp", Behaviour(email_outcome="reject"))
    population.set("+819099990001", Behaviour(call_outcome="busy", sms_outcome="undelivered"))
    env = {"RELAY_LOG_FORMAT": "json", "RELAY_CLAIM_LEASE": "12"}
    with Stack(db_url, tmp_path, population, workers=0, env=env) as stack:
        logs = [tmp_path / "worker-debug.log", tmp_path / "scheduler-debug.log"]
        for path, args in zip(
            logs,
            (["worker", "--concurrency=2", "--loglevel=DEBUG"], ["scheduler", "--tick", "0.5"]),
            strict=True,
        ):
            stack.workers.append(
                Worker({**stack.env, "RELAY_LOG_LEVEL": "DEBUG"}, log=path, args=args).start()
            )
        stack.import_directory(SAMPLE_CSV)
        alert_id = stack.issue(
            audience="district:釜利谷",
            template="earthquake",
            variables={"intensity": "5強", "area": "金沢区全域"},
            mode="blast",
            channels=("sms", "voice", "email"),
        )
        stack.wait_sent(alert_id, timeout=120)
        sim = stack.sim.log
        wait_until(
            lambda: (
                sim.of_kind("inbound_sms") and sim.of_kind("link_post") and sim.of_kind("gather")
            ),
            60,
            "answers by SMS, link and keypress",
        )
        stack.sim_thread.wait_idle(90)
        with transaction(db_url) as session:
            bodies = list(session.scalars(select(Delivery.body)))
        tokens = {m.group(1) for body in bodies for m in _TOKEN.finditer(body)}
        kinds = stack.sim.log.count_by_kind()
    # After the stack stopped: the processes' logs are complete.
    text = "\n".join(p.read_text(encoding="utf-8") for p in logs) + process_log.getvalue()
    numbers = _directory_numbers()
    secrets = {
        "auth token": {stack.auth_token},
        "secret key": {stack.env["RELAY_SECRET_KEY"]},
        "link token": tokens,
        "phone number": numbers,
    }
    # The run did what it should, so the logs had every chance to say too much.
    assert tokens and len(numbers) > 100 and len(text.splitlines()) > 50
    assert kinds.get("gather") and kinds.get("link_post") and kinds.get("inbound_sms")
    assert re.search(r"\+81\*+\d{4}", text), "masked numbers are expected in the logs"
    found = {what: sorted(s for s in values if s and s in text) for what, values in secrets.items()}
    assert found == {what: [] for what in secrets}
