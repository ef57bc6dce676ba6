"""Prepared alerts over the API (issue 17): a 土砂災害警戒情報 for 横浜市南部 goes through the real
ingest path (relay.jma.ingest) and leaves a draft; viewers list it with its bulletin and whom it
reaches; an operator issues it once — to the cliff-zone associations only — or discards it;
every refusal is JSON, the database unchanged."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from relay.config import load_settings
from relay.db import transaction
from relay.jma.ingest import Ingested, ingest_document
from relay.models import Alert, AlertDraft, AuditEvent, Contact, Organization
from tests.api_client import ApiClient, api_client, row_counts

FIXTURE = Path(__file__).parent / "fixtures" / "jma" / "vxww50_yokohama_nanbu.xml"
HUGE = 2**63  # one past the largest 64-bit id


@pytest.fixture
def api(db_url: str) -> Iterator[ApiClient]:
    with api_client(db_url) as client:  # the sample Kanazawa directory (cliff-zone tags)
        yield client


def ingest_landslide(db_url: str) -> Ingested:
    """The bulletin through the path the feed and `relay jma ingest` use. Its sample date is
    old: RELAY_JMA_MAX_AGE=0 lets it act."""
    settings = load_settings(
        {
            "RELAY_DATABASE_URL": db_url,
            "RELAY_SECRET_KEY": "api-test-secret-0123",
            "RELAY_JMA_MAX_AGE": "0",
        }
    )
    with transaction(db_url) as session:
        result = ingest_document(session, settings, FIXTURE.read_bytes(), FIXTURE.name)
    assert result.bulletin_id and result.draft_id, result.outcome
    assert result.alert_id is None  # a draft, not an automatic alert
    return result


def cliff_zone_associations(db_url: str) -> tuple[set[str], int]:
    """Codes of the active cliff-zone associations, and their active contacts."""
    with transaction(db_url) as session:
        orgs = [
            o
            for o in session.scalars(
                select(Organization).where(Organization.active, Organization.kind == "association")
            )
            if "cliff-zone" in (o.tags or ())
        ]
        contacts = session.scalar(
            select(func.count())
            .select_from(Contact)
            .where(Contact.active, Contact.organization_id.in_([o.id for o in orgs]))
        )
    return {o.code for o in orgs}, int(contacts or 0)


def count(db_url: str, model: type) -> int:
    with transaction(db_url) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def audits(db_url: str, action: str) -> list[AuditEvent]:
    with transaction(db_url) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_list_shows_the_draft_with_its_bulletin_and_reach(api: ApiClient, db_url: str) -> None:
    ingested = ingest_landslide(db_url)
    codes, contacts = cliff_zone_associations(db_url)
    assert codes and contacts  # the sample directory has cliff-zone associations

    listed = api.client.get("/api/v1/drafts", headers=api.auth("viewer"))
    assert listed.status_code == 200, listed.text
    [draft] = listed.json()
    assert draft["id"] == ingested.draft_id and draft["state"] == "open"
    assert draft["created_at"].endswith("+09:00")
    assert draft["status"] == "Actual" and draft["alert_id"] is None
    assert draft["rule"] and draft["template"] and "cliff-zone" in draft["audience"]
    assert set(draft["channels"]) <= {"sms", "voice", "email"} and draft["channels"]
    for key in ("variables", "mode", "questions", "ack_within", "summary"):
        assert key in draft
    assert draft["summary"]  # the bulletin's words and time
    bulletin = draft["bulletin"]
    assert bulletin["id"] == ingested.bulletin_id
    assert bulletin["title"] == "土砂災害警戒情報" and bulletin["office"] == "横浜地方気象台"
    assert bulletin["report_at"] == "2025-06-30T17:10:00+09:00"
    assert "土砂災害" in bulletin["headline"]
    assert draft["reach"] == {"organizations": len(codes), "recipients": contacts, "error": None}

    one = api.client.get(f"/api/v1/drafts/{draft['id']}", headers=api.auth("viewer"))
    assert one.status_code == 200 and one.json() == draft
    for state in ("issued", "discarded", "withdrawn"):
        other = api.client.get(f"/api/v1/drafts?state={state}", headers=api.auth("viewer"))
        assert other.status_code == 200 and other.json() == []
    every = api.client.get("/api/v1/drafts?state=all", headers=api.auth("viewer")).json()
    assert [d["id"] for d in every] == [draft["id"]]
    bad = api.client.get("/api/v1/drafts?state=pending", headers=api.auth("viewer"))
    assert bad.status_code == 422 and bad.json()["error"]
    twice = api.client.get("/api/v1/drafts?state=open&state=all", headers=api.auth("viewer"))
    assert twice.status_code == 422
    assert api.client.get("/api/v1/drafts").status_code == 401


def test_issue_reaches_the_cliff_zone_associations_only(api: ApiClient, db_url: str) -> None:
    ingested = ingest_landslide(db_url)
    codes, contacts = cliff_zone_associations(db_url)

    issued = api.client.post(
        f"/api/v1/drafts/{ingested.draft_id}/issue", headers=api.auth("operator")
    )
    assert issued.status_code == 201, issued.text
    alert = issued.json()
    assert alert["recipients"] == contacts and alert["draft"] == ingested.draft_id
    assert len(alert["reference"]) == 4 and alert["state"] in ("dispatching", "active")
    people = api.client.get(
        f"/api/v1/alerts/{alert['id']}/recipients", headers=api.auth("viewer")
    ).json()
    assert {p["org"] for p in people} == codes  # the cliff-zone associations, and only they
    shown = api.client.get(f"/api/v1/alerts/{alert['id']}", headers=api.auth("viewer")).json()
    assert shown["status"] == "Actual"

    with transaction(db_url) as session:
        draft = session.get(AlertDraft, ingested.draft_id)
        assert draft is not None
        assert (draft.state, draft.alert_id, draft.decided_by) == (
            "issued",
            alert["id"],
            "operator-1",
        )
        made = session.get(Alert, alert["id"])
        assert made is not None and made.issued_by == "operator-1"
    [event] = audits(db_url, "draft.issue")
    assert event.actor == "operator-1" and event.target == f"draft {ingested.draft_id}"
    assert event.details["bulletin_id"] == ingested.bulletin_id
    assert event.details["alert_id"] == alert["id"]
    # Over the API too: the audit names the alert and the bulletin behind it.
    log = api.client.get("/api/v1/audit", headers=api.auth("admin")).json()
    [entry] = [e for e in log if e["action"] == "draft.issue"]
    assert entry["details"]["bulletin_id"] == ingested.bulletin_id

    listed = api.client.get("/api/v1/drafts?state=issued", headers=api.auth("viewer")).json()
    assert [(d["id"], d["alert_id"], d["decided_by"]) for d in listed] == [
        (ingested.draft_id, alert["id"], "operator-1")
    ]
    assert listed[0]["decided_at"].endswith("+09:00")
    assert api.client.get("/api/v1/drafts", headers=api.auth("viewer")).json() == []


def test_issue_twice_is_409_and_one_alert(api: ApiClient, db_url: str) -> None:
    draft_id = ingest_landslide(db_url).draft_id
    first = api.client.post(f"/api/v1/drafts/{draft_id}/issue", headers=api.auth("operator"))
    assert first.status_code == 201, first.text
    before = row_counts(db_url)
    for action in ("issue", "discard"):
        again = api.client.post(f"/api/v1/drafts/{draft_id}/{action}", headers=api.auth("admin"))
        assert again.status_code == 409, again.text
        body = again.json()
        assert "already issued" in body["error"]
        assert body["state"] == "issued" and body["alert"] == first.json()["id"]
    assert row_counts(db_url) == before
    assert count(db_url, Alert) == 1
    assert len(audits(db_url, "draft.issue")) == 1


def test_discard_sends_nothing_and_cannot_be_issued(api: ApiClient, db_url: str) -> None:
    draft_id = ingest_landslide(db_url).draft_id
    discarded = api.client.post(f"/api/v1/drafts/{draft_id}/discard", headers=api.auth("operator"))
    assert discarded.status_code == 200, discarded.text
    assert discarded.json() == {"id": draft_id, "state": "discarded", "decided_by": "operator-1"}
    [event] = audits(db_url, "draft.discard")
    assert event.actor == "operator-1" and event.target == f"draft {draft_id}"

    late = api.client.post(f"/api/v1/drafts/{draft_id}/issue", headers=api.auth("operator"))
    assert late.status_code == 409
    assert late.json()["state"] == "discarded" and late.json()["alert"] is None
    assert count(db_url, Alert) == 0
    assert api.client.get("/api/v1/drafts", headers=api.auth("viewer")).json() == []
    gone = api.client.get("/api/v1/drafts?state=discarded", headers=api.auth("viewer")).json()
    assert [d["id"] for d in gone] == [draft_id]


def test_roles_unknown_and_huge_ids(api: ApiClient, db_url: str) -> None:
    draft_id = ingest_landslide(db_url).draft_id
    before = row_counts(db_url)
    for role in ("viewer", "coordinator"):
        for action in ("issue", "discard"):
            refused = api.client.post(f"/api/v1/drafts/{draft_id}/{action}", headers=api.auth(role))
            assert refused.status_code == 403 and role in refused.json()["error"]
    assert api.client.post(f"/api/v1/drafts/{draft_id}/issue").status_code == 401
    for action in ("issue", "discard"):
        missing = api.client.post(
            f"/api/v1/drafts/{draft_id + 1000}/{action}", headers=api.auth("operator")
        )
        assert missing.status_code == 404
        assert missing.json()["error"] == f"no draft {draft_id + 1000}"
        for bad in (HUGE, 0, "x"):
            invalid = api.client.post(
                f"/api/v1/drafts/{bad}/{action}", headers=api.auth("operator")
            )
            assert invalid.status_code == 422 and invalid.json()["error"]
    assert (
        api.client.get(f"/api/v1/drafts/{draft_id + 1000}", headers=api.auth("viewer")).status_code
        == 404
    )
    assert api.client.get(f"/api/v1/drafts/{HUGE}", headers=api.auth("viewer")).status_code == 422
    assert row_counts(db_url) == before  # nothing written by any refusal


def test_two_operators_confirming_at_once_issue_once(api: ApiClient, db_url: str) -> None:
    """The service locks the draft (FOR UPDATE): one 201, one 409, one alert."""
    if db_url.startswith("sqlite"):
        pytest.skip("row locks are PostgreSQL's; SQLite runs one writer at a time")
    draft_id = ingest_landslide(db_url).draft_id
    start = threading.Barrier(2)
    answers: list[Any] = []

    def confirm(role: str) -> None:
        start.wait()
        answers.append(api.client.post(f"/api/v1/drafts/{draft_id}/issue", headers=api.auth(role)))

    threads = [threading.Thread(target=confirm, args=(r,)) for r in ("operator", "admin")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r.status_code for r in answers) == [201, 409]
    assert count(db_url, Alert) == 1
