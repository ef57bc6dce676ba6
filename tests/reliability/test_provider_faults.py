"""The provider misbehaving: 20% HTTP 500, 5% timeouts after the request was received (the
ambiguous outcome), connection resets, 429 with Retry-After; mailboxes deferring (451, retried)
and refusing (550, permanent). Nobody is missed; ambiguous sends are reconciled by the status
callback, not resent blindly; duplicates are counted and bounded."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from simulator import Behaviour, FaultRates, Population
from tests.harness import Stack
from tests.reliability.faults import accepted_per_recipient, duplicates, fresh_pg, report

pytestmark = pytest.mark.slow
__all__ = ["fresh_pg"]

RECIPIENTS = 300


def _directory(path: Path) -> list[tuple[str, str]]:
    people = [(f"+8180{7000_0000 + n:08d}", f"p{n:04d}@example.jp") for n in range(RECIPIENTS)]
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            "org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,"
            "priority,mobile,landline,email,language".split(",")
        )
        for n, (phone, email) in enumerate(people):
            national = "0" + phone[3:]
            writer.writerow(
                [f"f{n:04d}", f"団体{n}", "association", "西柴", "", "", "利用者", "会長", 1,
                 f"{national[:3]}-{national[3:7]}-{national[7:]}", "", email, "ja"]
            )  # fmt: skip
    return people


def test_provider_faults_lose_no_one_and_bound_duplicates(fresh_pg: str, tmp_path: Path) -> None:
    people = _directory(tmp_path / "dir.csv")
    population = Population(
        seed=11,
        speed=20,
        faults=FaultRates(
            http_500=0.20, timeout=0.05, reset=0.03, http_429=0.02, retry_after=0.5,
            hang_seconds=12,
        ),
    )  # fmt: skip
    deferred = {email for _, email in people[:20]}
    refused = {email for _, email in people[20:30]}
    for email in deferred:
        population.set(email, Behaviour(email_defer_times=2))
    for email in refused:
        population.set(email, Behaviour(email_outcome="reject"))
    # The lease outlasts the longest chunk (a 10 s client timeout plus Retry-After pauses), as
    # the production default of 60 s outlasts the 30 s SMTP timeout.
    env = {"RELAY_VISIBILITY_TIMEOUT": "60", "RELAY_CLAIM_LEASE": "15"}
    with Stack(
        fresh_pg, tmp_path, population, sms_rate=200, email_rate=100, workers=2, scheduler=True,
        env=env,
    ) as stack:  # fmt: skip
        stack.import_directory(tmp_path / "dir.csv")
        alert_id = stack.issue(
            template="drill", mode="blast", channels=("sms", "email"), status="Exercise"
        )
        stack.wait_final(alert_id, timeout=240)
        log = stack.sim.log
        sms = log.sms_requests()
        faults = Counter(r.result for r in sms)
        counts = accepted_per_recipient(log)
        ambiguous = sum(1 for r in sms if r.result in ("timeout", "reset"))
        by_state = Counter(f"{d.channel}:{d.state}" for d in stack.deliveries(alert_id))
        mails = Counter((r.to or "").lower() for r in log.of_kind("email") if 200 <= r.status < 300)
        report(
            "provider faults",
            sms_requests=len(sms),
            results=dict(faults),
            ambiguous=ambiguous,
            sms_duplicates=duplicates(counts),
            email_duplicates=duplicates(mails),
            states=dict(by_state),
        )
        assert stack.sim.violations == []
        assert faults["20500"] and faults["20429"] and faults["timeout"] and faults["reset"]
        # Every phone has its SMS: nobody missed, whatever the provider answered first.
        assert set(counts) == {phone for phone, _ in people}
        # A timeout's message did go out and its callback reconciled it: never resent.
        timed_out = {r.to for r in sms if r.result == "timeout"}
        assert all(counts[to] == 1 for to in timed_out)
        assert duplicates(counts) <= ambiguous
        assert by_state["sms:delivered"] == RECIPIENTS
        # Mail: 451 deferred twice then accepted once; 550 fails at once, never retried.
        assert set(mails) == {e for _, e in people} - refused and duplicates(mails) == 0
        for email in deferred:
            assert [r.status for r in log.requests_to(email)] == [451, 451, 250]
        for email in refused:
            assert [r.status for r in log.requests_to(email)] == [550]
        assert by_state["email:failed"] == len(refused)
        assert by_state["email:sent"] == RECIPIENTS - len(refused)
