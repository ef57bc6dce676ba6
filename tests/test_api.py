"""The HTTP API: bearer tokens, roles, audit, JSON errors, the database unchanged on refusal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from relay.accounts.users import create_user
from relay.config import load_settings
from relay.db import transaction
from relay.models import Alert, AuditEvent, Contact, Delivery
from relay.web.app import create_app
from tests.conftest import SAMPLE_CSV


@pytest.fixture
def api(db_url: str) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    settings = load_settings(
        {"RELAY_DATABASE_URL": db_url, "RELAY_SECRET_KEY": "api-test-secret-0123"}
    )
    headers = {}
    with transaction(db_url) as session:
        for role in ("viewer", "operator", "coordinator", "admin"):
            _, token = create_user(session, f"{role}-1", role, actor="test")
            headers[role] = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/api/v1/directory/import", content=SAMPLE_CSV.read_bytes(), headers=headers["admin"]
        )
        assert response.status_code == 200, response.text
        yield client, headers


def count(db_url: str, model: type) -> int:
    with transaction(db_url) as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


ISSUE = {
    "template": "earthquake",
    "variables": {"intensity": "5強", "area": "金沢区全域"},
    "audience": "kind:hospital",
    "channels": ["sms", "email"],
    "mode": "blast",
}


def test_tokens_and_roles(api, db_url) -> None:
    client, h = api
    assert client.get("/api/v1/alerts").status_code == 401
    bad = client.get("/api/v1/alerts", headers={"Authorization": "Bearer rly_forged"})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid token"
    assert client.get("/api/v1/alerts", headers=h["viewer"]).status_code == 200
    refused = client.post("/api/v1/alerts", json=ISSUE, headers=h["viewer"])
    assert refused.status_code == 403 and "viewer" in refused.json()["error"]
    assert client.post("/api/v1/alerts", json=ISSUE, headers=h["coordinator"]).status_code == 403
    assert (
        client.post(
            "/api/v1/drills", json={"name": "q", "cron": "0 10 * * 1"}, headers=h["operator"]
        ).status_code
        == 403
    )
    assert client.get("/api/v1/audit", headers=h["operator"]).status_code == 403
    assert count(db_url, Alert) == 0


def test_issue_status_ack_cancel_audited(api, db_url) -> None:
    client, h = api
    created = client.post("/api/v1/alerts", json=ISSUE, headers=h["operator"])
    assert created.status_code == 201, created.text
    alert = created.json()
    assert alert["recipients"] >= 2 and len(alert["reference"]) == 4
    status = client.get(f"/api/v1/alerts/{alert['id']}", headers=h["viewer"]).json()
    assert status["sms"]["planned"] + status["email"]["planned"] > 0
    people = client.get(f"/api/v1/alerts/{alert['id']}/recipients", headers=h["viewer"]).json()
    first = people[0]
    acked = client.post(
        f"/api/v1/alerts/{alert['id']}/recipients/{first['id']}/ack",
        json={"note": "電話で確認"},
        headers=h["operator"],
    )
    assert acked.status_code == 200 and acked.json()["recorded"] is True
    cancelled = client.post(f"/api/v1/alerts/{alert['id']}/cancel", headers=h["operator"])
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    again = client.post(f"/api/v1/alerts/{alert['id']}/cancel", headers=h["operator"])
    assert again.status_code == 409
    with transaction(db_url) as s:
        pending = s.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.alert_id == alert["id"], Delivery.state.in_(("queued", "planned")))
        )
        assert pending == 0
    actions = [e["action"] for e in client.get("/api/v1/audit", headers=h["admin"]).json()]
    assert {"alert.issue", "alert.manual_ack", "alert.cancel", "directory.import"} <= set(actions)
    with transaction(db_url) as s:
        actor = s.scalars(select(AuditEvent.actor).where(AuditEvent.action == "alert.cancel")).one()
    assert actor == "operator-1"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**ISSUE, "template": "volcano"}, "volcano"),
        ({**ISSUE, "variables": {"intensity": "5強", "area": "x", "colour": "red"}}, "colour"),
        ({**ISSUE, "variables": {"area": "金沢区"}}, "intensity"),
        ({**ISSUE, "audience": "kind:temple"}, "unknown kind"),
        ({**ISSUE, "audience": "org:nowhere"}, "nowhere"),
        ({**ISSUE, "channels": ["fax"]}, "channels"),
        ({**ISSUE, "ack_within": "soon"}, "duration"),
    ],
)
def test_bad_issue_is_422_with_the_reason_and_nothing_written(api, db_url, body, message) -> None:
    client, h = api
    response = client.post("/api/v1/alerts", json=body, headers=h["operator"])
    assert response.status_code == 422
    assert message in response.json()["error"]
    assert count(db_url, Alert) == 0


def test_malformed_and_oversized_bodies(api, db_url) -> None:
    client, h = api
    broken = client.post(
        "/api/v1/alerts",
        content=b"{not json",
        headers={**h["operator"], "Content-Type": "application/json"},
    )
    assert broken.status_code == 422 and broken.json()["error"] == "invalid request"
    missing = client.post("/api/v1/alerts", json={"template": "test"}, headers=h["operator"])
    assert missing.status_code == 422 and any(
        d["field"].endswith("audience") for d in missing.json()["details"]
    )
    huge = client.post("/api/v1/directory/import", content=b"x" * 2_100_000, headers=h["admin"])
    assert huge.status_code == 413
    assert count(db_url, Alert) == 0


def test_bad_directory_upload_changes_nothing(api, db_url) -> None:
    client, h = api
    before = count(db_url, Contact)
    lines = SAMPLE_CSV.read_text(encoding="utf-8").splitlines()
    lines[39] = (
        lines[39].replace("090-9999-", "090-12-", 1)
        if "090-9999-" in lines[39]
        else lines[39] + "x"
    )
    response = client.post(
        "/api/v1/directory/import", content="\n".join(lines).encode(), headers=h["admin"]
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["line"] == 40
    assert count(db_url, Contact) == before


def test_drills_through_the_api(api) -> None:
    client, h = api
    saved = client.post(
        "/api/v1/drills",
        json={"name": "quarterly", "cron": "0 10 1-7 1,4,7,10 1"},
        headers=h["coordinator"],
    )
    assert saved.status_code == 201 and len(saved.json()["next"]) == 5
    assert saved.json()["next"][0].endswith("+09:00") or "T01:00:00" in saved.json()["next"][0]
    bad = client.post(
        "/api/v1/drills", json={"name": "x", "cron": "every day"}, headers=h["coordinator"]
    )
    assert bad.status_code == 422 and "5 fields" in bad.json()["error"]
    run = client.post("/api/v1/drills/quarterly/run", headers=h["coordinator"])
    assert run.status_code == 201
    assert client.post("/api/v1/drills/nope/run", headers=h["coordinator"]).status_code == 404
    listed = client.get("/api/v1/drills", headers=h["viewer"]).json()
    assert listed[0]["name"] == "quarterly" and listed[0]["runs"][0]["state"] == "pending"
    report = client.get(f"/api/v1/drills/runs/{run.json()['run_id']}/report", headers=h["viewer"])
    assert report.status_code == 409  # not started yet: no alert to report on
    assert client.get("/api/v1/drills/runs/999/report", headers=h["viewer"]).status_code == 404


def test_health_and_readiness(api) -> None:
    client, _ = api
    assert client.get("/healthz").text == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"ready": True, "database": "ok"}


def test_readiness_fails_clearly_without_a_database() -> None:
    unreachable = load_settings({"RELAY_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    with TestClient(create_app(unreachable)) as client:
        assert client.get("/healthz").status_code == 200  # the process is up...
        response = client.get("/readyz")  # ...but not ready, and says why
        assert response.status_code == 503
        assert response.json() == {"ready": False, "database": "OperationalError"}


def test_metrics_expose_the_series_operators_alert_on(api) -> None:
    client, h = api
    assert client.post("/api/v1/alerts", json=ISSUE, headers=h["operator"]).status_code == 201
    client.post("/webhooks/twilio/sms", data={"Body": "1"})  # unsigned: refused and counted
    text = client.get("/metrics").text
    assert 'relay_deliveries{channel="sms",state="queued"}' in text
    assert 'relay_alerts{status="Actual",state="active"} 1' in text
    assert "relay_outbox_unpublished " in text and "relay_escalations_due " in text
    assert 'relay_webhook_rejections_total{path="/webhooks/twilio/sms"}' in text


def test_issue_says_when_an_sms_is_longer_than_one_segment(api, db_url) -> None:
    """Issue 15: the API names each language whose SMS a long area pushes past its target,
    and by how many characters; a realistic one gets no note."""
    client, h = api
    plain = client.post("/api/v1/alerts", json=ISSUE, headers=h["operator"])
    assert plain.status_code == 201 and plain.json()["sms_notes"] == []
    long_area = {
        **ISSUE,
        "variables": {
            "intensity": "6強",
            "area": "釜利谷東・六浦東・六浦南の土砂災害警戒区域と周辺の急傾斜地",
        },
    }
    created = client.post("/api/v1/alerts", json=long_area, headers=h["operator"])
    assert created.status_code == 201, created.text
    notes = {n["language"]: n for n in created.json()["sms_notes"]}
    assert notes["ja"]["segments"] == 2 and notes["ja"]["target"] == 1
    assert (
        notes["ja"]["over_by"] > 0
        and f"{notes['ja']['over_by']}字超過" in notes["ja"]["message_ja"]
    )
    email_only = {**long_area, "channels": ["email"]}
    assert (
        client.post("/api/v1/alerts", json=email_only, headers=h["operator"]).json()["sms_notes"]
        == []
    )
