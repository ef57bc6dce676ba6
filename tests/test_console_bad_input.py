"""Console URLs and forms with numbers no database holds: a clear 4xx, never a 500
(ids past 64 bits raised OverflowError in five routes; so did a 10^20-day deadline)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from relay.config import load_settings
from relay.web.app import create_app
from tests.api_client import row_counts
from tests.console_support import load_directory, make_users, sign_in

HUGE = "99999999999999999999"  # past 2^63


@pytest.fixture
def operator(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    load_directory(db_url, tmp_path)
    make_users(db_url)
    settings = load_settings(
        {"RELAY_DATABASE_URL": db_url, "RELAY_SECRET_KEY": "console-test-secret-0123"}
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, sign_in(client, "operator")


def test_ids_past_64_bits_are_422_everywhere(operator, db_url: str) -> None:
    client, csrf = operator
    before = row_counts(db_url)
    for path in (f"/console/alerts/{HUGE}", f"/console/alerts/{HUGE}/live.json",
                 f"/console/drills/runs/{HUGE}/report"):  # fmt: skip
        response = client.get(path)
        assert response.status_code == 422, (path, response.text)
        assert "less than or equal to 9223372036854775807" in response.text
    for path, data in (
        (f"/console/alerts/{HUGE}/ack", {"org": "nishi-1", "note": "電話で確認"}),
        (f"/console/alerts/{HUGE}/cancel", {"confirm": "yes"}),
        (f"/console/alerts/{HUGE}/update", {"template": "earthquake"}),
        (f"/console/reports/{HUGE}/handled", {}),
    ):
        response = client.post(path, data={**data, "csrf_token": csrf})
        assert response.status_code == 422, (path, response.text)
    # A real id that is not there is still the console's own 404 page.
    assert client.get("/console/alerts/9223372036854775807").status_code == 404
    assert row_counts(db_url) == before


def test_a_deadline_no_alert_can_have_is_said_on_the_form(operator, db_url: str) -> None:
    client, csrf = operator
    before = row_counts(db_url)
    form = {
        "template": "earthquake", "var_intensity": "5強", "var_area": "西柴",
        "audience": "district:西柴", "status": "Exercise", "channels": "sms", "mode": "blast",
        "ack_within": "99999999999999d", "csrf_token": csrf,
    }  # fmt: skip
    for path in ("/console/alerts/confirm", "/console/alerts"):
        response = client.post(path, data={**form, "confirmed": "yes"})
        assert response.status_code == 422, response.text
        assert "too long" in response.text
    assert row_counts(db_url) == before
