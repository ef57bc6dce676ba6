"""Console sessions end when their user signs out, and nobody can lock an operator out by
typing wrong passwords for their name (issue 18, items 5 and 6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from relay.config import load_settings
from relay.db import transaction
from relay.models import AuditEvent, InboundMessage
from relay.web.app import create_app
from relay.web.console.throttle import ADDRESS_LIMIT, PAIR_LIMIT
from tests.console_support import PASSWORD, csrf_of, load_directory, make_users, sign_in

ATTACKER, OFFICE = ("203.0.113.5", 40000), ("198.51.100.7", 40001)


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[FastAPI]:
    load_directory(db_url, tmp_path)
    make_users(db_url)
    yield create_app(
        load_settings(
            {"RELAY_DATABASE_URL": db_url, "RELAY_SECRET_KEY": "console-test-secret-0123"}
        )
    )


def _login(client: TestClient, name: str, password: str) -> int:
    form = client.get("/console/login")
    response = client.post(
        "/console/login",
        data={"name": name, "password": password, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    return response.status_code


def _report(db_url: str) -> int:
    with transaction(db_url) as session:
        report = InboundMessage(
            provider_sid="SM" + "5" * 32, channel="sms", from_address="+819012345678",
            body="道路が冠水しています", interpretation="report",
        )  # fmt: skip
        session.add(report)
        session.flush()
        return report.id


def _handled(db_url: str, report_id: int) -> bool:
    with transaction(db_url) as session:
        report = session.get(InboundMessage, report_id)
        return report is not None and report.handled_at is not None


def test_signing_out_ends_the_session_and_every_copy_of_its_cookie(app, db_url: str) -> None:
    report_id = _report(db_url)
    with TestClient(app) as client, TestClient(app) as thief:
        csrf = sign_in(client, "operator")
        stolen = client.cookies.get("relay_console")
        assert stolen
        thief.cookies.set("relay_console", stolen, path="/console")
        assert thief.get("/console", follow_redirects=False).status_code == 200  # a live copy
        signed_out = client.post(
            "/console/logout", data={"csrf_token": csrf}, follow_redirects=False
        )
        assert signed_out.status_code == 303
        # The copy is worth nothing now: no page, no action, nothing changed.
        page = thief.get("/console", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/console/login")
        thief.cookies.clear()
        thief.cookies.set("relay_console", stolen, path="/console")  # replayed as it was
        acted = thief.post(
            f"/console/reports/{report_id}/handled",
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert acted.status_code in (303, 401) and not _handled(db_url, report_id)
        # Signing in again gives a new, working session.
        csrf = sign_in(client, "operator")
        done = client.post(
            f"/console/reports/{report_id}/handled",
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert done.status_code == 303 and _handled(db_url, report_id)
    with transaction(db_url) as session:
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions.count("user.sign_out") == 1


def test_wrong_passwords_from_one_address_do_not_lock_the_operator_out(app, db_url) -> None:
    with TestClient(app, client=ATTACKER) as attacker, TestClient(app, client=OFFICE) as office:
        for _ in range(PAIR_LIMIT):
            assert _login(attacker, "operator", "guess-guess-guess") == 401
        # The attacker's address is refused for that name, even with the right password,
        # saying why and what to do...
        refused = attacker.post(
            "/console/login",
            data={"name": "operator", "password": PASSWORD,
                  "csrf_token": csrf_of(attacker.get("/console/login").text)},
        )  # fmt: skip
        assert refused.status_code == 429
        assert "このユーザー名はこの端末から" in refused.text and "別の端末から" in refused.text
        assert attacker.get("/console", follow_redirects=False).status_code == 303  # not in
        # ...while the operator signs in from the office as always.
        assert _login(office, "operator", PASSWORD) == 303
        assert office.get("/console", follow_redirects=False).status_code == 200


def test_one_address_spraying_names_is_refused_whole(app, db_url) -> None:
    with TestClient(app, client=ATTACKER) as attacker, TestClient(app, client=OFFICE) as office:
        for n in range(ADDRESS_LIMIT):
            assert _login(attacker, f"name-{n}", "guess-guess-guess") == 401
        refused = attacker.post(
            "/console/login",
            data={"name": "viewer", "password": PASSWORD,
                  "csrf_token": csrf_of(attacker.get("/console/login").text)},
        )  # fmt: skip
        assert refused.status_code == 429 and "この端末（アドレス）から" in refused.text
        assert _login(office, "viewer", PASSWORD) == 303


def test_an_ipv6_client_is_counted_by_its_64_not_by_each_address(app, db_url) -> None:
    """One subscriber holds a whole /64: a new address from it per try is still one client."""
    prefix = "2001:db8:5:7"
    for n in range(ADDRESS_LIMIT):
        with TestClient(app, client=(f"{prefix}::{n + 1:x}", 40000)) as attacker:
            assert _login(attacker, f"name-{n}", "guess-guess-guess") == 401
    with TestClient(app, client=(f"{prefix}:ffff::9", 40000)) as fresh_address:
        assert _login(fresh_address, "viewer", PASSWORD) == 429
    with TestClient(app, client=("2001:db8:5:8::1", 40000)) as next_subscriber:
        assert _login(next_subscriber, "viewer", PASSWORD) == 303
