"""Security headers (issue 18, item 8): nosniff and no-referrer everywhere; on every HTML page a
CSP that runs only the page's own nonce-marked scripts and forbids framing; no /docs pages
that would load a CDN's JavaScript on the console's origin."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from relay.db import transaction
from relay.models import Alert, Delivery, DrillRun
from relay.web.app import create_app
from tests.console_support import sign_in
from tests.test_console import issue
from tests.test_console import settings as console_settings  # noqa: F401 - fixture
from tests.test_webhooks import issue_to_everyone, webhook_settings

SCRIPT = re.compile(r"<script([^>]*)>")


@pytest.fixture
def client(console_settings) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(console_settings)) as c:
        yield c


def _nonce(response) -> str:
    csp = response.headers["content-security-policy"]
    assert (
        "frame-ancestors 'none'" in csp
        and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    )
    assert response.headers["x-frame-options"] == "DENY"
    found = re.search(r"script-src 'nonce-([A-Za-z0-9_-]+)'", csp)
    assert found, csp
    return found.group(1)


def test_console_pages_run_only_their_own_scripts(client, console_settings) -> None:  # noqa: F811
    sign_in(client, "operator")
    alert_id = issue(console_settings)
    nonces = set()
    for path in ("/console", "/console/alerts/new", f"/console/alerts/{alert_id}"):
        response = client.get(path)
        assert response.status_code == 200, path
        nonce = _nonce(response)
        nonces.add(nonce)
        scripts = SCRIPT.findall(response.text)
        assert all(f'nonce="{nonce}"' in attrs for attrs in scripts), (path, scripts)
        assert "javascript:" not in response.text and " onclick=" not in response.text
        assert response.headers["x-content-type-options"] == "nosniff"
    assert len(nonces) == 3  # fresh for every response
    assert client.get("/console/login").headers["x-frame-options"] == "DENY"


def test_the_link_page_sends_no_referrer_and_cannot_be_framed(db_url: str) -> None:
    settings = webhook_settings(db_url)
    issue_to_everyone(db_url, settings)

    with transaction(db_url) as session:
        body = session.query(Delivery.body).first()
    assert body is not None
    link = re.search(r"/a/[A-Za-z0-9_.~-]+", body[0])
    assert link, body[0]
    with TestClient(create_app(settings)) as client:
        page = client.get(link.group(0))
        assert page.status_code == 200
        assert page.headers["referrer-policy"] == "no-referrer"
        _nonce(page)
        gone = client.get("/a/not-a-token")
        assert gone.status_code >= 400 and gone.headers["x-frame-options"] == "DENY"


def test_api_answers_are_not_sniffed_and_docs_pages_are_not_served(client) -> None:
    api = client.get("/api/v1/alerts")
    assert api.status_code == 401 and api.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in api.headers  # JSON runs nothing
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").status_code == 200


def test_a_drill_report_page_cannot_be_framed(client, console_settings) -> None:  # noqa: F811

    alert_id = issue(console_settings)
    with transaction(console_settings.database_url) as session:
        run = DrillRun(fire_time=datetime.now(UTC), state="running", alert_id=alert_id)
        session.add(run)
        session.flush()
        alert = session.get(Alert, alert_id)
        assert alert is not None
        alert.drill_run_id, run_id = run.id, run.id
    sign_in(client, "coordinator")
    response = client.get(f"/console/drills/runs/{run_id}/report")
    assert response.status_code == 200 and "<svg" in response.text
    _nonce(response)
