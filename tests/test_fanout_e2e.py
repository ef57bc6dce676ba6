"""The fan-out end to end (issue 3): real `relay worker` processes on Redis, the HTTP app taking
the carrier simulator's signed callbacks, the twilio client and aiosmtplib over loopback."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from relay.db import transaction
from relay.models import ContactPath
from simulator import Behaviour, Population
from tests.conftest import SAMPLE_CSV
from tests.harness import Stack, wait_until

pytestmark = pytest.mark.slow


def _paths(db_url: str) -> dict[str, set[str]]:
    with transaction(db_url) as session:
        by_kind: dict[str, set[str]] = {}
        for path in session.scalars(select(ContactPath)):
            by_kind.setdefault(path.kind, set()).add(path.address)
    return by_kind


def test_whole_directory_blast_one_request_per_delivery(db_url: str, tmp_path: Path) -> None:
    with Stack(db_url, tmp_path, Population(speed=20)) as stack:
        stack.import_directory(SAMPLE_CSV)
        alert_id = stack.issue(
            template="earthquake",
            variables={"intensity": "5強", "area": "金沢区全域"},
            mode="blast",
            channels=("sms", "voice", "email"),
        )
        stack.wait_final(alert_id, timeout=180)
        deliveries = stack.deliveries(alert_id)
        log = stack.sim.log
        assert stack.sim.violations == []
        # Exactly one provider request per planned delivery: nothing missing, nothing twice.
        planned = Counter((d.channel, d.address.lower()) for d in deliveries)
        kind = {"sms": "sms", "call": "voice", "email": "email"}
        received = Counter(
            (kind[r.kind], (r.to or "").lower()) for r in log.of_kind("sms", "call", "email")
        )
        assert received == planned
        # Landline contacts never get SMS.
        landlines = _paths(db_url).get("landline", set())
        assert landlines and not {r.to for r in log.sms_requests()} & landlines
        # The status shown matches the simulator's own record.
        status = stack.status(alert_id)
        assert status["sms"]["sent"] == len(log.sms_requests())
        assert status["voice"]["sent"] == len(log.of_kind("call"))
        assert status["email"]["sent"] == len(log.of_kind("email"))
        delivered_sids = {
            r.sid
            for r in log.of_kind("status_callback")
            if r.params.get("MessageStatus") == "delivered"
        }
        assert status["sms"]["delivered"] == len(delivered_sids)
        answered = {
            r.sid
            for r in log.of_kind("status_callback")
            if r.params.get("CallStatus") == "completed" and r.params.get("AnsweredBy") == "human"
        }
        assert status["voice"]["reached"] == len(answered)
        assert status["overall"]["failed"] == 0


def test_error_codes_retries_and_429s(db_url: str, tmp_path: Path) -> None:
    csv_path = tmp_path / "dir.csv"
    rows = [
        ("a01", "090-9999-0101", "invalid"),  # 21211: fails at once, no retry
        ("a02", "090-9999-0102", "flaky"),  # 500 x3, then accepted
        *[(f"a{n:02d}", f"090-9999-{100 + n:04d}", "throttled") for n in range(3, 23)],
    ]
    with csv_path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            "org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,"
            "priority,mobile,landline,email,language".split(",")
        )
        for code, number, _ in rows:
            writer.writerow(
                [
                    code,
                    f"{code}自治会",
                    "association",
                    "西柴",
                    "",
                    "",
                    "山田 一郎",
                    "会長",
                    1,
                    number,
                    "",
                    "",
                    "ja",
                ]
            )
    population = Population(speed=20)
    for _, number, role in rows:
        e164 = "+81" + number.replace("-", "")[1:]
        if role == "invalid":
            population.set(e164, Behaviour(line="invalid"))
        elif role == "flaky":
            population.set(e164, Behaviour(http_500_times=3))
        else:
            population.set(e164, Behaviour(http_429_times=2, retry_after=0.5))
    with Stack(db_url, tmp_path, population) as stack:
        stack.import_directory(csv_path)
        alert_id = stack.issue(template="test", mode="blast", channels=("sms",), status="Test")
        stack.wait_final(alert_id, timeout=120)
        log = stack.sim.log
        invalid = log.requests_to("+819099990101")
        assert [r.result for r in invalid] == ["21211"]
        flaky = log.requests_to("+819099990102")
        assert [r.status for r in flaky] == [500, 500, 500, 201]
        by_state = Counter(d.state for d in stack.deliveries(alert_id))
        assert by_state == {"failed": 1, "delivered": 21}
        for _, number, _role in rows[2:]:
            accepted = [
                r for r in log.requests_to("+81" + number.replace("-", "")[1:]) if r.status == 201
            ]
            assert len(accepted) == 1, number  # slowed down, never lost, never doubled
        failed = next(d for d in stack.deliveries(alert_id) if d.state == "failed")
        assert failed.error_code == "21211" and failed.tries == 1


def _bulk_directory(path: Path, count: int, prefix: str, district: str = "西柴") -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            "org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,"
            "priority,mobile,landline,email,language".split(",")
        )
        for n in range(count):
            writer.writerow(
                [
                    f"{prefix}{n:05d}",
                    f"団体{n}",
                    "association",
                    district,
                    "",
                    "",
                    "利用者",
                    "会長",
                    1,
                    f"080-{8000 + n // 10000:04d}-{n % 10000:04d}",
                    "",
                    "",
                    "ja",
                ]
            )


def test_rate_limit_shared_by_two_worker_processes(db_url: str, tmp_path: Path) -> None:
    csv_path = tmp_path / "dir.csv"
    _bulk_directory(csv_path, 120, "r")
    with Stack(db_url, tmp_path, sms_rate=20, workers=2, concurrency=2) as stack:
        stack.import_directory(csv_path)
        # A long area makes each SMS two segments: the shared bucket must count segments.
        area = "釜利谷東・六浦東・六浦南の土砂災害警戒区域と周辺の急傾斜地"
        alert_id = stack.issue(
            template="earthquake", variables={"intensity": "6強", "area": area},
            mode="blast", channels=("sms",), status="Exercise",
        )  # fmt: skip
        stack.wait_sent(alert_id, timeout=120)
        log = stack.sim.log
        segments = sum(r.segments for r in log.sms_requests())
        assert segments >= 240  # 120 two-segment messages
        burst = 3  # relay.delivery.runtime.burst_for(20)
        # The bucket grants at most rate x 1 s + burst per second. What the provider sees in a
        # closed 1-second window can be one message more (both ends count), and on this busy
        # 2-core machine requests granted apart may arrive together (scheduling jitter): one
        # more message of slack. Measured: 22-26 segments.
        assert log.window_max("sms", 1.0, "segments", accepted_only=True) <= 20 + burst + 2 * 2
        first, last = log.sms_requests()[0].mono, log.sms_requests()[-1].mono
        assert (segments - burst) / 20 * 0.9 <= last - first  # not faster than the limit allows


def test_real_alert_overtakes_a_running_exercise(db_url: str, tmp_path: Path) -> None:
    csv_path = tmp_path / "dir.csv"
    _bulk_directory(csv_path, 2000, "x")
    with csv_path.open("a", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        for n in range(20):
            writer.writerow(
                [
                    f"hosp{n}",
                    f"病院{n}",
                    "hospital",
                    "六浦",
                    "",
                    "",
                    "担当",
                    "災害対策担当",
                    1,
                    f"070-7777-{n:04d}",
                    "",
                    "",
                    "ja",
                ]
            )
    with Stack(db_url, tmp_path, sms_rate=300, workers=1, concurrency=2) as stack:
        stack.import_directory(csv_path)
        drill = stack.issue(
            audience="kind:association",
            template="drill",
            mode="blast",
            channels=("sms",),
            status="Exercise",
        )
        wait_until(lambda: len(stack.sim.log.sms_requests()) >= 200, 60, "exercise started")
        real = stack.issue(
            audience="kind:hospital",
            template="earthquake",
            variables={"intensity": "6弱", "area": "金沢区全域"},
            mode="blast",
            channels=("sms",),
        )
        stack.wait_sent(real, timeout=60)
        stack.wait_sent(drill, timeout=120)
        sms = stack.sim.log.sms_requests()
        real_times = [r.mono for r in sms if (r.to or "").startswith("+81707777")]
        drill_times = [r.mono for r in sms if (r.to or "").startswith("+8180")]
        assert len(real_times) == 20 and len(drill_times) == 2000
        # Every real message reached the provider while most of the exercise was still waiting.
        remaining = sum(1 for t in drill_times if t > max(real_times))
        assert remaining >= 1000, remaining


def test_worker_killed_mid_send_loses_no_one(db_url: str, tmp_path: Path) -> None:
    csv_path = tmp_path / "dir.csv"
    _bulk_directory(csv_path, 2000, "k")
    env = {"RELAY_VISIBILITY_TIMEOUT": "8", "RELAY_CLAIM_LEASE": "5"}
    with Stack(db_url, tmp_path, sms_rate=200, workers=1, concurrency=2, env=env) as stack:
        stack.import_directory(csv_path)
        alert_id = stack.issue(template="drill", mode="blast", channels=("sms",), status="Exercise")
        wait_until(lambda: len(stack.sim.log.sms_requests()) >= 500, 60, "sending started")
        stack.workers[0].kill()
        in_flight = stack.states(alert_id).get("sending", 0)
        sent_before = len(stack.sim.log.sms_requests())
        assert sent_before < 2000, "the kill came too late to test anything"
        stack.start_worker()
        stack.wait_sent(alert_id, timeout=180)
        counts = Counter(r.to for r in stack.sim.log.sms_requests() if r.status == 201)
        duplicates = sum(n - 1 for n in counts.values())
        print(
            f"\nkill test: {sent_before} sent before the kill, {in_flight} in flight, "
            f"{duplicates} duplicate(s)"
        )
        assert len(counts) == 2000  # no recipient missed
        assert duplicates <= in_flight
