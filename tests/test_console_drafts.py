"""Prepared alerts in the console over plain HTTP (tests/test_console_drafts_browser.py drives
them in Chromium): the dashboard shows a JMA bulletin's draft on top with its texts; viewers see
it and cannot act; one confirmation page, one POST issues it; a second POST, a forged or an
unconfirmed one is refused with a Japanese page and nothing written."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from relay.config import Settings, load_settings
from relay.db import transaction
from relay.directory.csv_format import parse_directory
from relay.directory.store import apply_directory
from relay.jma.ingest import ingest_document
from relay.models import Alert, AlertDraft, AuditEvent, Organization, Recipient
from relay.web.app import create_app
from tests.api_client import row_counts
from tests.console_support import HEADER, csrf_of, make_users, sign_in

FIXTURE = Path(__file__).parent / "fixtures" / "jma" / "vxww50_yokohama_nanbu.xml"
# code, name, kind, district, tags — three associations by a cliff (one contact each), two
# that are not, and a disaster-prevention base.
ORGS = [
    ("gake-1", "釜利谷東崖下自治会", "association", "釜利谷", "cliff-zone"),
    ("gake-2", "六浦台自治会", "association", "六浦", "cliff-zone;flood-zone"),
    ("gake-3", "能見台北自治会", "association", "能見台", "cliff-zone"),
    ("hira-1", "金沢町自治会", "association", "金沢", ""),
    ("hira-2", "泥亀自治会", "association", "金沢", "flood-zone"),
    ("base-1", "金沢小学校地域防災拠点", "disaster_base", "金沢", ""),
]
CLIFF = {"gake-1", "gake-2", "gake-3"}


def write_directory(path: Path) -> Path:
    """The directory above; contact n of ORGS has mobile 090-9999-30n0."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for n, (code, name, kind, district, tags) in enumerate(ORGS, start=1):
            contact = (f"{name}会長", "会長", 1, f"090-9999-30{n}0", "", f"{code}@example.jp", "ja")
            writer.writerow([code, name, kind, district, "", tags, *contact])
    return path


def ingest_landslide(settings: Settings) -> int:
    """The 土砂災害警戒情報 through the real ingest path; its draft's id."""
    with transaction(settings.database_url) as session:
        result = ingest_document(session, settings, FIXTURE.read_bytes(), FIXTURE.name)
    assert result.draft_id, result.outcome
    return result.draft_id


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    data = write_directory(tmp_path / "directory.csv").read_bytes()
    with transaction(db_url) as session:
        apply_directory(session, parse_directory(data), actor="test")
    make_users(db_url, ("viewer", "operator"))
    return load_settings(
        {
            "RELAY_DATABASE_URL": db_url,
            "RELAY_SECRET_KEY": "console-test-secret-0123",
            "RELAY_JMA_MAX_AGE": "0",  # the sample's date is old
        }
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def test_dashboard_confirmation_and_issue(client: TestClient, settings: Settings) -> None:
    db_url = settings.database_url
    draft_id = ingest_landslide(settings)
    token = sign_in(client, "operator")

    dashboard = client.get("/console").text
    assert dashboard.index('id="drafts"') < dashboard.index("進行中の警報")  # on top
    card = dashboard[dashboard.index(f'id="draft-{draft_id}"') :]
    for words in (
        "JMA発表に基づく下書き",
        "土砂災害警戒情報",
        "横浜地方気象台",
        "2025-06-30 17:10 発表",  # the bulletin's own time, in Asia/Tokyo
        "3 団体・3 人",
        "実際の警報",
        "この内容で発信",
        "破棄",
    ):
        assert words in card, words
    for channel in ("sms", "voice", "email"):
        assert f'<pre class="msg {channel}">' in card  # the rendered Japanese texts

    confirm = client.get(f"/console/drafts/{draft_id}")
    assert confirm.status_code == 200
    assert "これは<u>実際の警報</u>です" in confirm.text
    assert "実際の警報として発信する" in confirm.text

    unconfirmed = client.post(f"/console/drafts/{draft_id}/issue", data={"csrf_token": token})
    assert unconfirmed.status_code == 422 and "確認画面" in unconfirmed.text
    before = row_counts(db_url)
    forged = client.post(
        f"/console/drafts/{draft_id}/issue", data={"csrf_token": "forged", "confirmed": "yes"}
    )
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert row_counts(db_url) == before

    issued = client.post(
        f"/console/drafts/{draft_id}/issue",
        data={"csrf_token": token, "confirmed": "yes"},
        follow_redirects=False,
    )
    assert issued.status_code == 303, issued.text
    location = issued.headers["location"]
    assert location.startswith("/console/alerts/") and location.endswith("?done=issued")
    alert_id = int(location.split("/")[-1].split("?")[0])
    page = client.get(location).text
    assert 'id="from-draft"' in page and "発令しました" in page
    with transaction(db_url) as session:
        codes = set(
            session.scalars(
                select(Organization.code)
                .join(Recipient, Recipient.organization_id == Organization.id)
                .where(Recipient.alert_id == alert_id)
            )
        )
        draft = session.get(AlertDraft, draft_id)
        assert draft is not None and (draft.state, draft.alert_id) == ("issued", alert_id)
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "draft.issue")).one()
        assert event.actor == "operator" and event.details["bulletin_id"] == draft.bulletin_id
    assert codes == CLIFF

    before = row_counts(db_url)
    again = client.post(
        f"/console/drafts/{draft_id}/issue", data={"csrf_token": token, "confirmed": "yes"}
    )
    assert again.status_code == 409 and "発信済み" in again.text
    assert client.get(f"/console/drafts/{draft_id}").status_code == 409
    discard = client.post(f"/console/drafts/{draft_id}/discard", data={"csrf_token": token})
    assert discard.status_code == 409
    assert row_counts(db_url) == before
    assert 'id="drafts"' not in client.get("/console").text


def test_viewer_sees_and_cannot_act_discard_unknown(client: TestClient, settings: Settings) -> None:
    db_url = settings.database_url
    draft_id = ingest_landslide(settings)
    token = sign_in(client, "viewer")
    dashboard = client.get("/console").text
    assert "JMA発表に基づく下書き" in dashboard and "土砂災害警戒情報" in dashboard
    assert 'data-action="issue"' not in dashboard and 'data-action="discard"' not in dashboard
    assert "この内容で発信" not in dashboard
    assert "発信・破棄は操作員が行います" in dashboard
    before = row_counts(db_url)
    for action in ("issue", "discard"):
        refused = client.post(
            f"/console/drafts/{draft_id}/{action}", data={"csrf_token": token, "confirmed": "yes"}
        )
        assert refused.status_code == 403 and "権限がありません" in refused.text
    assert row_counts(db_url) == before

    client.post("/console/logout", data={"csrf_token": token})
    token = sign_in(client, "operator")
    before = row_counts(db_url)  # signing out and in are audited
    assert client.get(f"/console/drafts/{draft_id + 99}").status_code == 404
    missing = client.post(f"/console/drafts/{draft_id + 99}/discard", data={"csrf_token": token})
    assert missing.status_code == 404 and "下書きが見つかりません" in missing.text
    huge = client.post(f"/console/drafts/{2**63}/discard", data={"csrf_token": token})
    assert huge.status_code == 422
    assert row_counts(db_url) == before

    discarded = client.post(
        f"/console/drafts/{draft_id}/discard", data={"csrf_token": token}, follow_redirects=False
    )
    assert (
        discarded.status_code == 303 and discarded.headers["location"] == "/console?done=discarded"
    )
    after = client.get(discarded.headers["location"]).text
    assert "下書きを破棄しました" in after and 'id="drafts"' not in after
    late = client.post(
        f"/console/drafts/{draft_id}/issue", data={"csrf_token": token, "confirmed": "yes"}
    )
    assert late.status_code == 409 and "破棄済み" in late.text
    with transaction(db_url) as session:
        assert session.scalar(select(func.count()).select_from(Alert)) == 0
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "draft.discard")
        ).one()
        assert event.actor == "operator"
    assert csrf_of(after)  # still signed in
