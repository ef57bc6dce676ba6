"""Issue 16 end to end: an exercise asks associations and disaster bases for the damage report
and the base status; the leaders — played by the carrier simulator, the alert sent by real
Celery workers and the reminders by the real scheduler — answer by SMS (in question order,
full-width with ideographic spaces, by name), by the link page's form, by the keypad of a
call, and through an operator; a base revises its count. Reminders go to exactly the
organizations that acknowledged without the required answers, and the API's tallies, per
district and per kind of organization, add up to what was sent."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from relay.accounts.users import create_user
from relay.db import transaction
from relay.models import Answer, Delivery, Organization, Recipient
from simulator import Behaviour, Population
from tests.harness import Stack, wait_until

pytestmark = pytest.mark.slow

HEADER = (
    "org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,priority,"
    "mobile,landline,email,language"
).split(",")
QUESTIONNAIRES = ("damage-report", "base-status")
REMIND_AFTER = timedelta(seconds=6)  # real seconds: the relay runs on the real clock
EARLY, LATE = 2.0, 20.0  # simulated seconds (x10): the complete answers come first
# org, kind, district, mobile, landline, what its leader does
LEADERS: list[tuple[str, str, str, str, str, Behaviour]] = [
    # In question order: 人的被害 なし, 建物被害 一部損壊, 火災 なし, 道路 あり.
    ("a1", "association", "六浦", "090-9999-1001", "",
     Behaviour(sms_reply="1 2 2 1", sms_reply_delay=EARLY)),
    # Full-width digits and ideographic spaces, 火災 skipped: reminded, then 火災 あり by name.
    ("a2", "association", "六浦", "090-9999-1002", "",
     Behaviour(sms_reply="１　２　０　２", sms_reply_delay=LATE,
               on_reminder=Behaviour(sms_reply="火災 1", sms_reply_delay=EARLY))),
    # The link page's form: 負傷者あり, 建物 なし, 火災 なし, and what help is needed.
    ("a3", "association", "西柴", "090-9999-1003", "",
     Behaviour(link_form={"injured": "2", "buildings": "1", "fire": "2", "needs": "毛布と水"},
               link_delay=EARLY)),
    # A landline, called at once: 1 acknowledges, then 人的被害 なし, 倒壊あり, 火災 なし.
    ("a4", "association", "西柴", "", "045-799-1004", Behaviour(line="landline", digits="1 1 3 2")),
    # Acknowledges only, ignores the reminder; the ward's operator enters what they said.
    ("a5", "association", "西柴", "090-9999-1005", "",
     Behaviour(sms_reply="了解", sms_reply_delay=LATE, on_reminder=Behaviour())),
    # Silent: neither acknowledged nor reminded.
    ("a6", "association", "六浦", "090-9999-1006", "", Behaviour()),
    # The form complete (45 sheltering), then a revised count by SMS: 避難者 60.
    ("b1", "disaster_base", "六浦", "090-9999-2001", "",
     Behaviour(link_form={"injured": "1", "buildings": "1", "fire": "2", "opened": "1",
                          "sheltering": "45", "supplies": "毛布"},
               link_delay=EARLY, sms_reply="避難者 60", sms_reply_delay=40)),
    # Only the count by name (acknowledged, not complete): reminded, then everything in
    # order with a new count — 0 skips 道路.
    ("b2", "disaster_base", "西柴", "090-9999-2002", "",
     Behaviour(sms_reply="避難者 45", sms_reply_delay=LATE,
               on_reminder=Behaviour(sms_reply="1 1 2 0 2 50", sms_reply_delay=EARLY))),
]  # fmt: skip
OPERATOR_ENTRY = {"injured": 1, "buildings": 1, "fire": 2}  # a5, heard by phone
# What counts in the end, per organization (the latest answer to each question).
FINAL: dict[str, dict[str, int | str]] = {
    "a1": {"injured": 1, "buildings": 2, "fire": 2, "roads": 1},
    "a2": {"injured": 1, "buildings": 2, "fire": 1, "roads": 2},
    "a3": {"injured": 2, "buildings": 1, "fire": 2, "needs": "毛布と水"},
    "a4": {"injured": 1, "buildings": 3, "fire": 2},
    "a5": dict(OPERATOR_ENTRY),
    "b1": {"injured": 1, "buildings": 1, "fire": 2, "opened": 1, "sheltering": 60,
           "supplies": "毛布"},
    "b2": {"injured": 1, "buildings": 1, "fire": 2, "opened": 2, "sheltering": 50},
}  # fmt: skip


def e164(number: str) -> str:
    return "+81" + number.replace("-", "")[1:]


def expected_tally() -> dict[str, dict[str, Any]]:
    """Per question: answered, options (non-zero) or sum, overall and per district and kind,
    counted from FINAL."""
    meta = {org: (kind, district) for org, kind, district, *_ in LEADERS}
    out: dict[str, dict[str, Any]] = {}
    for org, answers in FINAL.items():
        kind, district = meta[org]
        for qid, value in answers.items():
            q = out.setdefault(qid, {"all": {}, "by_district": {}, "by_kind": {}})
            for entry in (
                q["all"],
                q["by_district"].setdefault(district, {}),
                q["by_kind"].setdefault(kind, {}),
            ):
                entry["answered"] = entry.get("answered", 0) + 1
                if isinstance(value, str):
                    continue
                if qid == "sheltering":
                    entry["sum"] = entry.get("sum", 0) + value
                else:
                    options = entry.setdefault("options", {})
                    options[str(value)] = options.get(str(value), 0) + 1
    return out


def _shown(entry: dict[str, Any]) -> dict[str, Any]:
    """An API tally entry in expected_tally's terms (options without the zero counts)."""
    shown: dict[str, Any] = {"answered": entry["answered"]}
    if "options" in entry:
        shown["options"] = {k: v for k, v in entry["options"].items() if v}
    if "sum" in entry:
        shown["sum"] = entry["sum"]
    return shown


def reminded(url: str, alert_id: int) -> set[str]:
    """Organizations the relay has sent a reminder: an SMS after the first."""
    with transaction(url) as session:
        return set(
            session.scalars(
                select(Organization.code)
                .join(Recipient, Recipient.organization_id == Organization.id)
                .join(Delivery, Delivery.recipient_id == Recipient.id)
                .where(Delivery.alert_id == alert_id, Delivery.attempt > 1)
                .where(Delivery.channel == "sms", Delivery.sent_at.is_not(None))
            )
        )


def versions(url: str, alert_id: int, org: str, question: str) -> list[tuple[Any, str]]:
    with transaction(url) as session:
        rows = session.execute(
            select(Answer.number, Answer.method)
            .join(Organization, Organization.id == Answer.organization_id)
            .where(Answer.alert_id == alert_id, Organization.code == org)
            .where(Answer.question_id == question)
            .order_by(Answer.answered_at, Answer.id)
        ).all()
    return [tuple(row) for row in rows]


def test_a_situation_report_answered_every_way_reminded_and_tallied(
    db_url: str, tmp_path: Path
) -> None:
    csv_path = tmp_path / "dir.csv"
    population = Population(speed=10)
    with csv_path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for org, kind, district, mobile, landline, behaviour in LEADERS:
            writer.writerow(
                [org, f"{district}{org}", kind, district, "", "", f"会長{org}", "会長", 1,
                 mobile, landline, "", "ja"]
            )  # fmt: skip
            population.set(e164(mobile or landline), behaviour)
    with Stack(db_url, tmp_path, population, scheduler=True) as stack:
        stack.import_directory(csv_path)
        url = stack.settings.database_url
        with transaction(url) as session:
            _, viewer = create_user(session, "viewer-1", "viewer", actor="test")
            _, operator = create_user(session, "operator-1", "operator", actor="test")
        alert_id = stack.issue(
            audience="kind:association,disaster_base",
            template="earthquake",
            variables={"intensity": "6強", "area": "金沢区全域"},
            channels=("sms", "voice"),
            mode="cascade",
            status="Exercise",
            ack_within=timedelta(minutes=30),
            voice_after=timedelta(minutes=10),  # only the landline is called
            questions=QUESTIONNAIRES,
            remind_after=REMIND_AFTER,
        )
        api = httpx.Client(base_url=stack.public_url, timeout=10)

        def tally() -> dict[str, Any]:
            response = api.get(
                f"/api/v1/alerts/{alert_id}/answers",
                headers={"Authorization": f"Bearer {viewer}"},
            )
            assert response.status_code == 200, response.text
            return response.json()

        def behind() -> dict[str, list[str]]:
            return {
                o["org"]: o["questions"] for o in tally()["acknowledged_without_required_answers"]
            }

        # Reminded: exactly those that acknowledged without the required answers, once each,
        # and a2 and b2 complete their reports in answer. a1, a3 and b1 answered everything
        # in the request that acknowledged, a4 in the call (and has no SMS to be reminded
        # by); a6 never acknowledged.
        wait_until(lambda: len(reminded(url, alert_id)) >= 3, 60, "three reminders", 0.3)
        wait_until(lambda: not {"a2", "b2"} & set(behind()), 30,
                   "a2 and b2 answering their reminders", 0.3)  # fmt: skip
        assert reminded(url, alert_id) == {"a2", "a5", "b2"}
        assert behind() == {"a5": ["injured", "buildings", "fire"]}
        log = stack.sim.log
        texts = {org: [r for r in log.requests_to(e164(m)) if r.kind == "sms"]
                 for org, _, _, m, _, _ in LEADERS if m}  # fmt: skip
        assert {org for org, sms in texts.items() if len(sms) == 2} == {"a2", "a5", "b2"}
        assert all(len(sms) == 1 for org, sms in texts.items() if org not in ("a2", "a5", "b2"))
        assert {org for org, sms in texts.items() if sms[-1].reminded} == {"a2", "a5", "b2"}
        for org in ("a2", "a5", "b2"):
            reminder = texts[org][1].body or ""
            assert reminder.startswith("【訓練】") and "/a/" in reminder, reminder

        # The operator enters what a5 said on the phone.
        response = api.post(
            f"/api/v1/alerts/{alert_id}/answers",
            json={"org": "a5", "answers": OPERATOR_ENTRY},
            headers={"Authorization": f"Bearer {operator}"},
        )
        assert response.status_code == 200, response.text
        # b1's revised count comes last (40 simulated seconds).
        wait_until(lambda: len(versions(url, alert_id, "b1", "sheltering")) == 2, 30,
                   "b1's revised count", 0.3)  # fmt: skip

        final = tally()
        assert final["organizations_asked"] == 8
        assert final["organizations_answered_required"] == 7  # all but the silent a6
        assert final["acknowledged_without_required_answers"] == []
        expected = expected_tally()
        by_id = {q["id"]: q for q in final["questions"]}
        assert set(expected) <= set(by_id)
        for qid, want in expected.items():
            q = by_id[qid]
            assert q["asked"] == (2 if qid in ("opened", "sheltering", "supplies") else 8), qid
            if q["kind"] == "text":
                assert q["answered"] == want["all"]["answered"], qid
            else:
                assert _shown(q) == want["all"], qid
                for key in ("by_district", "by_kind"):
                    got = {group: _shown(entry) for group, entry in q[key].items()}
                    assert got == want[key], (qid, key)
        assert by_id["sheltering"]["sum"] == 110  # 60 + 50: the latest counts
        assert [t["text"] for t in by_id["needs"]["texts"]] == ["毛布と水"]
        assert [t["text"] for t in by_id["supplies"]["texts"]] == ["毛布"]
        critical = {(c["org"], c["question"]) for c in final["critical"]}
        assert critical == {("a2", "fire"), ("a3", "injured"), ("a4", "buildings")}

        # Every version is kept; each answer came the way its leader gave it.
        assert versions(url, alert_id, "b1", "sheltering") == [(45, "link"), (60, "sms_reply")]
        assert versions(url, alert_id, "b2", "sheltering") == [
            (45, "sms_reply"),
            (50, "sms_reply"),
        ]
        assert versions(url, alert_id, "a4", "buildings") == [(3, "voice_key")]
        assert versions(url, alert_id, "a5", "fire") == [(2, "manual")]
        assert versions(url, alert_id, "a3", "injured") == [(2, "link")]
        assert [r.kind for r in log.requests_to(e164("045-799-1004"))] == ["call"]
        (posted,) = [r for r in log.of_kind("link_post") if r.to == e164("090-9999-1003")]
        assert posted.status == 200
        thanks = {r.from_: r.response or "" for r in log.of_kind("inbound_sms")}
        assert "回答4件を受け付けました" in thanks[e164("090-9999-1001")]
        assert stack.sim.violations == []
        api.close()
