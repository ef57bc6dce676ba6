"""Issue 16 end to end: a damage report asked with a real alert, answered by SMS, by the link
page's form and by the keypad of a call — the recipients played by the carrier simulator, the
alert sent by real Celery workers — and the ward's picture adds up to what they answered."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from relay.db import transaction
from relay.models import Alert
from relay.reports.answers import answer_tally
from simulator import Behaviour, Population
from tests.harness import Stack, wait_until

pytestmark = pytest.mark.slow

HEADER = (
    "org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,priority,"
    "mobile,landline,email,language"
).split(",")
# org, mobile, landline, how its leader answers the damage report
PEOPLE = [
    # By SMS in question order, full-width: 人的被害 なし, 建物被害 一部損壊, 火災 なし, 道路 あり.
    ("r1", "090-9999-1001", "", Behaviour(sms_reply="１ ２ ２ １", sms_reply_delay=5)),
    # The form: 負傷者あり, 建物被害 なし, 火災 あり, and what help is needed.
    (
        "r2",
        "090-9999-1002",
        "",
        Behaviour(
            link_form={"injured": "2", "buildings": "1", "fire": "1", "needs": "毛布と水"},
            link_delay=5,
        ),
    ),
    # A landline: called at once; 1 acknowledges, then 人的被害 なし, 倒壊あり, 火災 なし.
    ("r3", "", "045-799-1003", Behaviour(line="landline", digits="1 1 3 2")),
]


def e164(number: str) -> str:
    return "+81" + number.replace("-", "")[1:]


def picture(url: str, alert_id: int) -> dict[str, Any]:
    with transaction(url) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        return answer_tally(session, alert)


def test_a_damage_report_answered_by_sms_link_and_keypad(db_url: str, tmp_path: Path) -> None:
    csv_path = tmp_path / "dir.csv"
    population = Population(speed=10)
    with csv_path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for org, mobile, landline, behaviour in PEOPLE:
            writer.writerow(
                [org, f"{org}自治会", "association", "六浦", "", "", f"会長{org}", "会長", 1,
                 mobile, landline, "", "ja"]
            )  # fmt: skip
            population.set(e164(mobile or landline), behaviour)
    with Stack(db_url, tmp_path, population, scheduler=True) as stack:
        stack.import_directory(csv_path)
        alert_id = stack.issue(
            audience="kind:association",
            template="earthquake",
            variables={"intensity": "6強", "area": "金沢区全域"},
            channels=("sms", "voice"),
            mode="cascade",
            ack_within=timedelta(minutes=30),
            voice_after=timedelta(minutes=10),  # nobody here needs a call to answer
            questions=("damage-report",),
        )
        url = stack.settings.database_url

        def all_reported() -> bool:
            return picture(url, alert_id)["organizations_answered_required"] == 3

        wait_until(all_reported, 90, "three organizations reporting", 0.3)
        tally = picture(url, alert_id)
        by_id = {q["id"]: q for q in tally["questions"]}
        assert by_id["injured"]["options"] == {"1": 2, "2": 1, "3": 0}
        assert by_id["buildings"]["options"] == {"1": 1, "2": 1, "3": 1}
        assert by_id["fire"]["options"] == {"1": 1, "2": 2}
        assert by_id["roads"]["options"] == {"1": 1, "2": 0}  # only r1 answered it
        assert [t["text"] for t in by_id["needs"]["texts"]] == ["毛布と水"]
        critical = {(c["org"], c["question"]) for c in tally["critical"]}
        assert critical == {("r2", "injured"), ("r2", "fire"), ("r3", "buildings")}
        assert tally["acknowledged_without_required_answers"] == []
        status = stack.status(alert_id)
        assert status["silent_orgs"] == []
        # Each answer came by the channel the leader used.
        log = stack.sim.log
        assert [r.kind for r in log.requests_to(e164("090-9999-1001"))] == ["sms"]
        assert [r.kind for r in log.requests_to(e164("045-799-1003"))] == ["call"]
        (posted,) = [r for r in log.of_kind("link_post") if r.to == e164("090-9999-1002")]
        assert posted.status == 200
        thanks = [r.response or "" for r in log.of_kind("inbound_sms")]
        assert any("回答4件を受け付けました" in text for text in thanks)
        assert stack.sim.violations == []
