"""Every CLI command that reports something has --json, with the API's key names (issue 14):
a script can switch between `relay ... --json` and the API without renaming a field."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from relay.cli import app
from tests.api_client import api_client

EARTHQUAKE = ["--template", "earthquake", "--var", "intensity=5強", "--var", "area=金沢区全域"]


def cli_json(*args: str) -> object:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.stderr or result.stdout
    return json.loads(result.stdout)


def test_cli_json_keys_are_the_api_keys(relay_env: dict[str, str]) -> None:
    with api_client(relay_env["RELAY_DATABASE_URL"]) as api:  # also imports the directory
        operator, coordinator = api.auth("operator"), api.auth("coordinator")
        http = api.client

        issued = cli_json("alert", "issue", *EARTHQUAKE, "--audience", "kind:hospital")
        by_api = http.post(
            "/api/v1/alerts",
            json={
                "template": "earthquake",
                "variables": {"intensity": "5強", "area": "金沢区全域"},
                "audience": "kind:hospital",
            },
            headers=operator,
        )
        assert by_api.status_code == 201, by_api.text
        assert isinstance(issued, dict) and issued.keys() == by_api.json().keys()
        assert issued["recipients"] == by_api.json()["recipients"] > 0

        status = cli_json("alert", "status", str(issued["id"]))
        api_status = http.get(f"/api/v1/alerts/{issued['id']}", headers=operator).json()
        assert isinstance(status, dict) and status.keys() == api_status.keys()

        def first_recipient(alert_id: int) -> dict:
            people = http.get(f"/api/v1/alerts/{alert_id}/recipients", headers=operator).json()
            return people[0]

        mine = first_recipient(issued["id"])
        acked = cli_json("alert", "ack", str(issued["id"]), "--org", mine["org"], "--note", "電話")
        theirs = first_recipient(by_api.json()["id"])
        api_acked = http.post(
            f"/api/v1/alerts/{by_api.json()['id']}/recipients/{theirs['id']}/ack",
            json={"note": "電話"},
            headers=operator,
        )
        assert api_acked.status_code == 200, api_acked.text
        assert isinstance(acked, dict) and acked.keys() == api_acked.json().keys()
        assert acked["recorded"] is True
        assert first_recipient(issued["id"])["ack_method"] == "manual"

        cancelled = cli_json("alert", "cancel", str(issued["id"]))
        api_cancelled = http.post(f"/api/v1/alerts/{by_api.json()['id']}/cancel", headers=operator)
        assert api_cancelled.status_code == 200, api_cancelled.text
        assert isinstance(cancelled, dict) and cancelled.keys() == api_cancelled.json().keys()
        assert cancelled["id"] == issued["id"] and cancelled["state"] == "cancelled"

        made = http.post(
            "/api/v1/drills", json={"name": "monthly", "cron": "0 10 1 * *"}, headers=coordinator
        )
        assert made.status_code == 201, made.text
        run = cli_json("drill", "run", "monthly")
        api_run = http.post("/api/v1/drills/monthly/run", headers=coordinator)
        assert api_run.status_code in (201, 409), api_run.text  # one run at a time is allowed
        assert isinstance(run, dict) and set(run) == {"run_id"}
        if api_run.status_code == 201:
            assert run.keys() == api_run.json().keys()
        # The run's alert is issued by a worker (none runs here): CLI and API both say so.
        early = CliRunner().invoke(app, ["drill", "report", str(run["run_id"]), "--json"])
        api_early = http.get(f"/api/v1/drills/runs/{run['run_id']}/report", headers=operator)
        assert early.exit_code == 1 and api_early.status_code == 409, api_early.text
        assert api_early.json()["error"] in early.stderr

        user = cli_json("user", "create", "kanazawa-ops", "--role", "operator")
        api_user = http.post(
            "/api/v1/users", json={"name": "kanazawa-ops-2", "role": "operator"},
            headers=api.auth("admin"),
        )  # fmt: skip
        assert api_user.status_code == 201, api_user.text
        assert isinstance(user, dict) and user.keys() == api_user.json().keys()
        assert user["token"] and user["token"] != api_user.json()["token"]


def test_issue_prints_a_note_when_an_sms_takes_more_segments(relay_env: dict[str, str]) -> None:
    """Issue 15: `relay alert issue` says which language's SMS a long area makes longer than
    its target, and by how much; the alert is still issued."""
    with api_client(relay_env["RELAY_DATABASE_URL"]):  # imports the directory
        area = "area=釜利谷東・六浦東・六浦南の土砂災害警戒区域と周辺の急傾斜地"
        args = ["alert", "issue", "--template", "earthquake", "--var", "intensity=6強"]
        result = CliRunner().invoke(app, [*args, "--var", area, "--audience", "kind:hospital"])
        assert result.exit_code == 0, result.stderr
        assert "issued" in result.stdout
        assert "note: ja SMS is 2 segments" in result.stderr
        assert "characters over 1 segment" in result.stderr
        plain = CliRunner().invoke(app, [*args, "--var", "area=金沢区全域", "--audience", "all"])
        assert plain.exit_code == 0 and "note:" not in plain.stderr
