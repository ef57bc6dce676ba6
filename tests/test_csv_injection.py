"""CSV the relay writes opens in Excel as text, never as formulas (OWASP "CSV Injection"), and
the directory's export still imports back to exactly the same directory."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from relay.alerts.issuing import IssueRequest, issue_alert
from relay.config import load_settings
from relay.db import transaction
from relay.directory.audience import parse_audience
from relay.directory.csv_format import COLUMNS, parse_directory
from relay.directory.store import apply_directory, export_csv
from relay.models import DrillRun
from relay.reports import formats, tally

HOSTILE = {
    "org_name": '=HYPERLINK("http://evil.example/","名簿を開く")',
    "district": "-2+3",
    "tags": "=1+1;防災",
    "contact_name": "@SUM(1+1)",
    "role": "+cmd|' /C calc'!A0",
}
SAFE_START = ("=", "+", "-", "@", "\t", "\r")


def _directory() -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerow(
        {
            "org_code": "evil", "org_kind": "association", "priority": 1, "language": "ja",
            "mobile": "090-9999-0001", "email": "evil@example.jp", "parent_code": "",
            "landline": "", **HOSTILE,
        }
    )  # fmt: skip
    writer.writerow(
        {
            "org_code": "plain", "org_name": "西柴自治会", "org_kind": "association",
            "district": "西柴", "tags": "", "contact_name": "''山田' 一郎", "role": "会長",
            "priority": 1, "mobile": "", "landline": "045-799-0101", "email": "",
            "parent_code": "", "language": "ja",
        }
    )  # fmt: skip
    return out.getvalue()


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def test_directory_export_is_inert_and_imports_back_exactly(db_url: str) -> None:
    with transaction(db_url) as session:
        apply_directory(session, parse_directory(_directory()), actor="test")
        exported = export_csv(session)
    cells = _cells(exported)
    assert [c for c in cells if c.startswith(SAFE_START)] == []
    assert "'" + HOSTILE["org_name"] in cells and "'@SUM(1+1)" in cells
    assert "'+819099990001" in cells  # an E.164 number is text, not a formula or a number
    with transaction(db_url) as session:
        again = apply_directory(session, parse_directory(exported), actor="test")
        assert not again.changed, again
        assert export_csv(session) == exported
    rows = {row["org_code"]: row for row in csv.DictReader(io.StringIO(exported))}
    # A cell's first quote is the spreadsheet's "this is text", so a name that begins with a
    # quote of its own is written with one more, and reads back as it was.
    assert parse_directory(_directory()).contacts[1].name == "'山田' 一郎"
    assert rows["plain"]["contact_name"] == "''山田' 一郎"
    assert parse_directory(exported).contacts[1].name == "'山田' 一郎"


def test_drill_report_csv_is_inert(db_url: str) -> None:
    start = datetime.now(UTC)
    with transaction(db_url) as session:
        apply_directory(session, parse_directory(_directory()), actor="test")
        run = DrillRun(fire_time=start, state="running")
        session.add(run)
        session.flush()
        alert = issue_alert(
            session,
            load_settings({"RELAY_DATABASE_URL": db_url}),
            IssueRequest(
                template="drill", audience=parse_audience("all"), channels=("sms",),
                mode="blast", status="Exercise", ack_within=timedelta(minutes=30),
                drill_run_id=run.id,
            ),
            now=start,
        )  # fmt: skip
        run.alert_id = alert.id
        report = tally.drill_report(session, run.id)
    text = formats.to_csv(report)
    cells = _cells(text)
    assert "'" + HOSTILE["org_name"] in cells  # never answered, listed by its name
    assert "'-2+3" in cells  # the district's row
    assert [c for c in cells if c.startswith(SAFE_START)] == []
