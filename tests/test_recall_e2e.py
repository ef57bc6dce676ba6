"""The cascade's second call round and spoken answers end to end (issue 10, ops/REACH.md):
a contact whose call met nobody is called once more while the next contact already has its
turn; the organization is reported silent only after every call had its chance."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from relay.db import transaction
from relay.models import AuditEvent, Organization, Recipient
from simulator import Behaviour, Population
from tests.harness import Stack, wait_until
from tests.test_acks_e2e import HEADER, e164

pytestmark = pytest.mark.slow

RECALL_S = 20  # real seconds after the first call was placed
# org, priority, phone (landline when it starts with 045), first behaviour
PEOPLE = [
    ("back", 1, "045-799-0101", Behaviour(line="landline", call_outcome="no-answer")),
    ("machine", 1, "090-9999-0201", Behaviour(call_outcome="machine")),
    ("machine", 2, "090-9999-0202", Behaviour(call_outcome="no-answer")),
    ("keys", 1, "045-799-0301", Behaviour(line="landline", digits="1")),
]


def _directory(path: Path, population: Population) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for org, priority, phone, behaviour in PEOPLE:
            landline = phone.startswith("045")
            writer.writerow(
                [org, f"{org}自治会", "association", "西柴", "", "", f"会長{org}{priority}",
                 "会長", priority, "" if landline else phone, phone if landline else "", "", "ja"]
            )  # fmt: skip
            population.set(e164(phone), behaviour)


def test_second_call_reaches_a_person_back_home_and_alternates_do_not_wait(
    db_url: str, tmp_path: Path
) -> None:
    population = Population(speed=10)
    _directory(tmp_path / "dir.csv", population)
    with Stack(db_url, tmp_path, population, scheduler=True) as stack:
        stack.import_directory(tmp_path / "dir.csv")
        alert_id = stack.issue(
            template="drill",
            status="Exercise",
            channels=("sms", "voice"),
            mode="cascade",
            voice_after=timedelta(seconds=6),
            next_contact_after=timedelta(seconds=12),
            recall_after=timedelta(seconds=RECALL_S),
        )
        log = stack.sim.log
        back = e164("045-799-0101")

        def first_call_missed() -> bool:
            return any(
                r.to == back and r.params.get("CallStatus") == "no-answer"
                for r in log.of_kind("status_callback")
            )

        wait_until(first_call_missed, 60, "the first call to 'back' rang out")
        # The leader comes home and, invited to, answers the second call by saying はい.
        stack.sim.set_behaviour(back, Behaviour(line="landline", speech="はい"))
        url = stack.settings.database_url

        stack.wait_settled(alert_id, 180)

        calls: dict[str, list[float]] = {}
        for r in log.of_kind("call"):
            if r.status == 201:
                calls.setdefault(r.to or "", []).append(r.mono)
        # A person who was missed gets exactly one more call, RECALL_S after the first.
        assert len(calls[back]) == 2
        assert calls[back][1] - calls[back][0] >= RECALL_S - 1
        # Machine and no-answer: both contacts called twice; the key-presser once.
        assert len(calls[e164("090-9999-0201")]) == 2
        assert len(calls[e164("090-9999-0202")]) == 2
        assert len(calls[e164("045-799-0301")]) == 1
        # The alternate was not held back for the primary's second call.
        alternate_sms = min(r.mono for r in log.of_kind("sms") if r.to == e164("090-9999-0202"))
        assert alternate_sms < calls[e164("090-9999-0201")][1]

        with transaction(url) as session:
            methods = dict(
                session.execute(
                    select(Organization.code, Recipient.ack_method)
                    .join(Organization, Organization.id == Recipient.organization_id)
                    .where(Recipient.alert_id == alert_id, Recipient.acknowledged_at.is_not(None))
                ).all()
            )
            silent = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "alert.org_silent")
            ).all()
        assert methods == {"back": "voice_speech", "keys": "voice_key"}
        # Reported silent once, after the alternate's second call had ended.
        assert len(silent) == 1
        voice = stack.states(alert_id, by_channel=True)
        assert (voice["voice:no_answer"], voice["voice:machine"]) == (3, 2)
        assert stack.sim.violations == []
