"""Drill reports: figures equal those computed independently from known answer times."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from relay.alerts.issuing import IssueRequest, issue_alert
from relay.config import load_settings
from relay.db import transaction
from relay.directory.audience import parse_audience
from relay.directory.csv_format import parse_directory
from relay.directory.store import apply_directory
from relay.models import Contact, DrillRun, Organization, Recipient
from relay.replies import acks
from relay.reports import formats, tally

START = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)  # 10:00 JST
# org -> minutes after the start at which someone answered (None: never), method
ANSWERS = {
    "o01": (1, "sms_reply"),
    "o02": (3, "voice_key"),
    "o03": (4.5, "link"),
    "o04": (7, "sms_reply"),
    "o05": (12, "link"),
    "o06": (14, "voice_key"),
    "o07": (16, "sms_reply"),
    "o08": (29, "manual"),
    "o09": (45, "sms_reply"),
    "o10": (None, ""),
    "o11": (None, ""),
    "o12": (2, "sms_reply"),
}
DISTRICT = {code: ("西柴" if int(code[1:]) % 2 else "並木") for code in ANSWERS}


def _directory() -> str:
    lines = [
        "org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,priority,"
        "mobile,landline,email,language"
    ]
    for n, code in enumerate(ANSWERS, start=1):
        kind = "association" if n <= 8 else "disaster_base"
        lines.append(
            f"{code},{code}会,{kind},{DISTRICT[code]},,,氏名{n},会長,1,090-9999-{n:04d},,,ja"
        )
    return "\n".join(lines) + "\n"


def test_report_figures_match_the_answers(db_url: str) -> None:
    settings = load_settings({"RELAY_DATABASE_URL": db_url})
    with transaction(db_url) as session:
        apply_directory(session, parse_directory(_directory()), actor="test")
        run = DrillRun(fire_time=START, state="running")
        session.add(run)
        session.flush()
        alert = issue_alert(
            session,
            settings,
            IssueRequest(
                template="drill",
                audience=parse_audience("all"),
                channels=("sms",),
                mode="blast",
                status="Exercise",
                ack_within=timedelta(minutes=30),
                drill_run_id=run.id,
            ),
            now=START,
        )
        run.alert_id = alert.id
        run_id = run.id
        for recipient, code in session.execute(
            select(Recipient, Organization.code)
            .join(Contact, Contact.id == Recipient.contact_id)
            .join(Organization, Organization.id == Contact.organization_id)
        ):
            minutes, method = ANSWERS[code]
            if minutes is not None:
                acks.acknowledge(
                    session, recipient, method, "ack", START + timedelta(minutes=minutes)
                )
    with transaction(db_url) as session:
        report = tally.drill_report(session, run_id)

    answered = {c: m for c, (m, _) in ANSWERS.items() if m is not None}
    total = len(ANSWERS)
    for mark in (5, 15, 30):
        expected = round(sum(1 for m in answered.values() if m <= mark) / total, 4)
        assert report["rates"][f"{mark}m"] == expected
    assert report["rates"]["deadline"] == round(
        sum(1 for m in answered.values() if m <= 30) / total, 4
    )
    assert report["acknowledged_at_end"] == len(answered)
    times_s = sorted(m * 60 for m in answered.values())
    assert report["time_to_ack_s"]["median"] == statistics.median(times_s)
    assert {o["code"] for o in report["never_answered"]} == {"o10", "o11"}
    assert report["methods"] == {"link": 2, "manual": 1, "sms_reply": 5, "voice_key": 2}
    by_district = {row["district"]: row for row in report["by_district"]}
    odd = [c for c in ANSWERS if DISTRICT[c] == "西柴"]
    assert by_district["西柴"]["organizations"] == len(odd)
    assert by_district["西柴"]["acknowledged"] == sum(
        1 for c in odd if ANSWERS[c][0] is not None and ANSWERS[c][0] <= 30
    )
    html = formats.to_html(report)
    assert html.count("<svg") >= 3 and "【訓練】" in html and "o10" in html
    csv_text = formats.to_csv(report)
    assert "never_answered,o10" in csv_text and "rate_at,5m" in csv_text
