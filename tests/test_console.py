"""The operators' web console over plain HTTP (the browser test drives it in Chromium):
sign-in, CSRF, roles, issuing with preview and confirmation, manual ack, cancel, reports,
drills — every refusal a Japanese page, with the database unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy import update as sa_update
from typer.testing import CliRunner

from relay.accounts.passwords import set_password
from relay.alerts.issuing import IssueRequest, issue_alert
from relay.cli import app as cli_app
from relay.config import Settings, load_settings
from relay.db import transaction
from relay.directory.audience import parse_audience
from relay.drills import service
from relay.messages import sms_units
from relay.models import Alert, AuditEvent, Delivery, InboundMessage, User
from relay.web.app import create_app
from tests.console_support import PASSWORD, csrf_of, load_directory, make_users, sign_in


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    load_directory(db_url, tmp_path)
    make_users(db_url)
    return load_settings(
        {"RELAY_DATABASE_URL": db_url, "RELAY_SECRET_KEY": "console-test-secret-0123"}
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def audits(db_url: str, action: str) -> list[AuditEvent]:
    with transaction(db_url) as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def count(db_url: str, model: type) -> int:
    with transaction(db_url) as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def issue(settings: Settings, audience: str = "district:西柴") -> int:
    request = IssueRequest(
        template="earthquake",
        audience=parse_audience(audience),
        variables={"intensity": "5強", "area": "西柴"},
        channels=("sms", "email"),
        mode="blast",
        status="Exercise",
        issued_by="test",
    )
    with transaction(settings.database_url) as session:
        return issue_alert(session, settings, request).id


def alert_state(db_url: str, alert_id: int) -> str:
    with transaction(db_url) as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None
        return alert.state


def test_sign_in_refusals_and_cookie(client: TestClient, db_url: str) -> None:
    first = client.get("/console", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/console/login?next=/console"
    form = client.get("/console/login")
    assert form.status_code == 200 and "サインイン" in form.text and 'lang="ja"' in form.text
    token = csrf_of(form.text)
    before = count(db_url, AuditEvent)
    for name, password in (("operator", "wrong-password-1"), ("nobody", PASSWORD)):
        refused = client.post(
            "/console/login",
            data={"name": name, "password": password, "csrf_token": token},
            follow_redirects=False,
        )
        assert refused.status_code == 401
        assert "ユーザー名またはパスワードが正しくありません" in refused.text
    no_csrf = client.post(
        "/console/login", data={"name": "operator", "password": PASSWORD}, follow_redirects=False
    )
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
    # Five failures for one name: it is refused for a while, even with the right password.
    for _ in range(5):
        client.post(
            "/console/login",
            data={"name": "viewer", "password": "guess-guess-1", "csrf_token": token},
        )
    throttled = client.post(
        "/console/login", data={"name": "Viewer", "password": PASSWORD, "csrf_token": token}
    )
    assert throttled.status_code == 429 and "しばらく使えません" in throttled.text
    assert count(db_url, AuditEvent) == before  # nothing recorded, nobody signed in
    assert client.get("/console", follow_redirects=False).status_code == 303

    good = client.post(
        "/console/login",
        data={"name": "operator", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert good.status_code == 303 and good.headers["location"] == "/console"
    cookie = good.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/console" in cookie
    dashboard = client.get("/console")
    assert dashboard.status_code == 200
    assert "進行中の警報" in dashboard.text and "operator（操作員）" in dashboard.text
    assert csrf_of(dashboard.text) != token  # a new session, a new token, at sign-in
    assert [e.actor for e in audits(db_url, "user.sign_in")] == ["operator"]

    # A tampered cookie is no session at all.
    value = client.cookies.get("relay_console")
    assert value
    client.cookies.set("relay_console", value[:-2] + "xx", path="/console")
    assert client.get("/console", follow_redirects=False).status_code == 303
    assert client.get("/console/alerts/1/live.json").status_code == 401


def test_issue_exercise_with_preview_confirmation_ack_and_cancel(
    client: TestClient, db_url: str
) -> None:
    csrf = sign_in(client, "operator")
    fields = {
        "template": "earthquake",
        "var_intensity": "5強",
        "var_area": "西柴",
        "audience": "district:西柴",
        "status": "Exercise",
        "channels": ["sms", "email"],
        "mode": "cascade",
        "ack_within": "15m",
    }
    preview = client.get("/console/alerts/preview.json", params=fields)
    assert preview.status_code == 200, preview.text
    data = preview.json()
    assert (data["recipients"], data["organizations"]) == (3, 3)
    assert data["by_language"] == {"ja": 2, "en": 1}
    for language in ("ja", "en", "ja-easy"):
        sms = data["messages"][language]["sms"]
        assert sms["text"].startswith("【訓練】") and sms["segments"] <= sms["budget"]
        assert sms["segments"] <= (1 if language == "ja" else 2) and sms["note"] is None
    assert "これは訓練です" in data["messages"]["ja"]["voice"]["text"]
    assert data["messages"]["ja"]["email"]["subject"].startswith("【訓練】")

    bad = client.get("/console/alerts/preview.json", params={**fields, "var_intensity": "9"})
    assert bad.status_code == 422 and "intensity" in bad.json()["error"]
    nobody = client.get("/console/alerts/preview.json", params={**fields, "audience": "district:x"})
    assert nobody.status_code == 422 and "no organization" in nobody.json()["error"]

    confirm = client.post("/console/alerts/confirm", data={**fields, "csrf_token": csrf})
    assert confirm.status_code == 200
    assert "これは<u>訓練</u>です（実際の警報ではありません）" in confirm.text
    assert "3 団体・3 人" in confirm.text
    real = client.post(
        "/console/alerts/confirm", data={**fields, "status": "Actual", "csrf_token": csrf}
    )
    assert "これは<u>実際の警報</u>です。訓練ではありません。" in real.text
    assert count(db_url, Alert) == 0  # confirming writes nothing

    skipped = client.post("/console/alerts", data={**fields, "csrf_token": csrf})
    assert skipped.status_code == 422 and count(db_url, Alert) == 0
    issued = client.post(
        "/console/alerts",
        data={**fields, "confirmed": "yes", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert issued.status_code == 303, issued.text
    alert_id = int(issued.headers["location"].split("/")[-1].split("?")[0])
    with transaction(db_url) as s:
        alert = s.get(Alert, alert_id)
        assert alert is not None
        assert (alert.status, alert.issued_by, alert.template) == (
            "Exercise",
            "operator",
            "earthquake",
        )
    assert [e.actor for e in audits(db_url, "alert.issue")] == ["operator"]

    page = client.get(f"/console/alerts/{alert_id}")
    assert page.status_code == 200 and alert.reference in page.text and "訓練" in page.text
    live = client.get(f"/console/alerts/{alert_id}/live.json").json()
    assert (live["recipients"], live["acknowledged"]) == (3, 0)
    assert live["districts"] == [
        {"district": "西柴", "organizations": 3, "acknowledged": 0, "reached": 0, "rate": 0.0}
    ]
    assert [o["code"] for o in live["silent"]] == ["nishi-1", "nishi-2", "nishi-3"]

    no_note = client.post(
        f"/console/alerts/{alert_id}/ack", data={"org": "nishi-2", "note": "", "csrf_token": csrf}
    )
    assert no_note.status_code == 422 and "メモ" in no_note.text
    acked = client.post(
        f"/console/alerts/{alert_id}/ack",
        data={"org": "nishi-2", "note": "電話で会長に確認", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert acked.status_code == 303
    live = client.get(f"/console/alerts/{alert_id}/live.json").json()
    assert live["acknowledged"] == 1 and [o["code"] for o in live["silent"]] == [
        "nishi-1",
        "nishi-3",
    ]
    assert [(e.actor, e.summary) for e in audits(db_url, "alert.manual_ack")] == [
        ("operator", "nishi-2 / 西柴第二自治会会長: 電話で会長に確認")
    ]

    # Nobody was sent anything (no worker here): an update has no one to go to.
    refused = client.post(
        f"/console/alerts/{alert_id}/update",
        data={"template": "all-clear", "var_area": "西柴", "csrf_token": csrf},
    )
    assert refused.status_code == 409 and "更新できませんでした" in refused.text
    # Once the provider has accepted the SMS (as the worker records it), an update goes to them.
    with transaction(db_url) as s:
        s.execute(
            sa_update(Delivery)
            .where(Delivery.alert_id == alert_id, Delivery.channel == "sms")
            .values(state="sent", sent_at=datetime.now(UTC))
        )
    updated = client.post(
        f"/console/alerts/{alert_id}/update",
        data={"template": "all-clear", "var_area": "西柴", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert updated.status_code == 303, updated.text
    update_id = int(updated.headers["location"].split("/")[-1].split("?")[0])
    with transaction(db_url) as s:
        follow_up = s.get(Alert, update_id)
        assert follow_up is not None
        assert (follow_up.msg_type, follow_up.supersedes_id) == ("Update", alert_id)
        assert follow_up.status == "Exercise"  # an exercise's update is an exercise too
    assert [e.actor for e in audits(db_url, "alert.update")] == ["operator"]
    assert alert_state(db_url, alert_id) == "closed"
    assert "引き継がれました" in client.get(f"/console/alerts/{alert_id}").text

    unconfirmed = client.post(f"/console/alerts/{update_id}/cancel", data={"csrf_token": csrf})
    assert unconfirmed.status_code == 422 and alert_state(db_url, update_id) == "active"
    cancelled = client.post(
        f"/console/alerts/{update_id}/cancel",
        data={"confirm": "yes", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert cancelled.status_code == 303 and alert_state(db_url, update_id) == "cancelled"
    assert [e.actor for e in audits(db_url, "alert.cancel")] == ["operator"]
    assert "取消済み" in client.get(f"/console/alerts/{update_id}").text
    again = client.post(
        f"/console/alerts/{update_id}/cancel", data={"confirm": "yes", "csrf_token": csrf}
    )
    assert again.status_code == 409 and "この警報はすでに「取消済み」です" in again.text


def test_csrf_and_roles_refuse_and_change_nothing(
    client: TestClient, settings: Settings, db_url: str
) -> None:
    alert_id = issue(settings)
    csrf = sign_in(client, "operator")
    missing = client.post(f"/console/alerts/{alert_id}/cancel", data={"confirm": "yes"})
    assert (
        missing.status_code == 403
        and "CSRF" in missing.text
        and "何も変更されていません" in missing.text
    )
    wrong = client.post(
        f"/console/alerts/{alert_id}/cancel", data={"confirm": "yes", "csrf_token": csrf + "x"}
    )
    assert wrong.status_code == 403
    assert alert_state(db_url, alert_id) == "active" and not audits(db_url, "alert.cancel")

    with TestClient(client.app) as viewer:
        token = sign_in(viewer, "viewer")
        refused = viewer.post(
            f"/console/alerts/{alert_id}/cancel", data={"confirm": "yes", "csrf_token": token}
        )
        assert refused.status_code == 403
        assert "この操作を行う権限がありません" in refused.text and "閲覧者" in refused.text
        assert viewer.get("/console/alerts/new").status_code == 403
        ack = viewer.post(
            f"/console/alerts/{alert_id}/ack",
            data={"org": "nishi-1", "note": "x", "csrf_token": token},
        )
        assert ack.status_code == 403
        page = viewer.get(f"/console/alerts/{alert_id}")  # viewers read
        assert page.status_code == 200 and "警報を取り消す" not in page.text
    assert alert_state(db_url, alert_id) == "active"
    assert not audits(db_url, "alert.cancel") and not audits(db_url, "alert.manual_ack")

    # Inbound reports: viewers read, operators mark handled (audited as in the API).
    with transaction(db_url) as s:
        report = InboundMessage(
            provider_sid="SM" + "1" * 32,
            channel="sms",
            from_address="+819099991001",
            body="道路が冠水しています",
            alert_id=alert_id,
            interpretation="report",
            received_at=datetime.now(UTC),
        )
        s.add(report)
        s.flush()
        report_id = report.id
    with TestClient(client.app) as viewer:
        token = sign_in(viewer, "viewer")
        assert "道路が冠水しています" in viewer.get("/console/reports").text
        no = viewer.post(f"/console/reports/{report_id}/handled", data={"csrf_token": token})
        assert no.status_code == 403
    done = client.post(
        f"/console/reports/{report_id}/handled", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert done.status_code == 303
    assert [(e.actor, e.target) for e in audits(db_url, "report.handled")] == [
        ("operator", f"inbound {report_id}")
    ]
    assert "未対応の報告はありません" in client.get("/console/reports").text

    # Drills: operators may not run one; coordinators may (audited as drill.run).
    with transaction(db_url) as s:
        service.save_schedule(
            s, service.ScheduleSpec(name="quarterly", cron="0 10 1-7 1,4,7,10 1"), actor="test"
        )
    assert (
        client.post("/console/drills/quarterly/run", data={"csrf_token": csrf}).status_code == 403
    )
    assert not audits(db_url, "drill.run")
    with TestClient(client.app) as coordinator:
        token = sign_in(coordinator, "coordinator")
        assert "quarterly" in coordinator.get("/console/drills").text
        ran = coordinator.post(
            "/console/drills/quarterly/run", data={"csrf_token": token}, follow_redirects=False
        )
        assert ran.status_code == 303
        assert [e.actor for e in audits(db_url, "drill.run")] == ["coordinator"]
        missing_run = coordinator.get("/console/drills/runs/999/report")
        assert missing_run.status_code == 404 and "見つかりません" in missing_run.text
        assert coordinator.get("/console/alerts/999").status_code == 404


def test_cli_sets_a_console_password(relay_env: dict[str, str], db_url: str) -> None:
    runner = CliRunner()
    short = runner.invoke(
        cli_app, ["user", "create", "suzuki", "--role", "operator", "--password-stdin"], "short\n"
    )
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    assert count(db_url, User) == 0  # refused before anything was written
    made = runner.invoke(
        cli_app, ["user", "create", "suzuki", "--role", "operator", "--password-stdin"], PASSWORD
    )
    assert made.exit_code == 0, made.output
    assert "console password set" in made.output and PASSWORD not in made.output
    changed = runner.invoke(
        cli_app, ["user", "password", "suzuki", "--password-stdin"], "another-pass-42\n"
    )
    assert changed.exit_code == 0, changed.output
    settings = load_settings()
    with TestClient(create_app(settings)) as client:
        form = client.get("/console/login")
        old = client.post(
            "/console/login",
            data={"name": "suzuki", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
        )
        assert old.status_code == 401
        sign_in(client, "suzuki", "another-pass-42")
    with transaction(db_url) as s:
        stored = s.scalars(select(User.password_hash)).one()
    assert stored and stored.startswith("scrypt$") and "another-pass-42" not in stored


def test_drill_schedule_form_and_session_end(
    client: TestClient, settings: Settings, db_url: str
) -> None:
    csrf = sign_in(client, "coordinator")
    schedule = {
        "name": "quarterly",
        "cron": "0 10 1-7 1,4,7,10 1",
        "template": "drill",
        "audience": "district:西柴",
        "channels": ["sms", "email"],
        "mode": "cascade",
        "ack_within": "30m",
        "enabled": "yes",
        "csrf_token": csrf,
    }
    bad = client.post("/console/drills", data={**schedule, "cron": "0 25 * * *"})
    assert bad.status_code == 422 and 'id="form-error"' in bad.text
    assert 'value="0 25 * * *"' in bad.text  # the form keeps what was typed
    with transaction(db_url) as s:
        assert service.schedules_overview(s) == []
    saved = client.post("/console/drills", data=schedule, follow_redirects=False)
    assert saved.status_code == 303
    page = client.get(saved.headers["location"]).text
    assert "訓練の日程を保存しました" in page and "quarterly" in page
    with transaction(db_url) as s:
        (row,) = service.schedules_overview(s)
    assert row["enabled"] and row["next_fire_at"] is not None  # scheduled
    assert [e.actor for e in audits(db_url, "drill.schedule")] == ["coordinator"]

    with TestClient(client.app) as operator:
        token = sign_in(operator, "operator")
        refused = operator.post("/console/drills", data={**schedule, "csrf_token": token})
        assert refused.status_code == 403 and "訓練担当" in refused.text
        # A new password ends the sessions signed in with the old one.
        with transaction(db_url) as s:
            set_password(s, "operator", "a-new-password-9", actor="test")
        assert operator.get("/console", follow_redirects=False).status_code == 303
        # So does deactivating the user.
        sign_in(operator, "operator", "a-new-password-9")
        with transaction(db_url) as s:
            s.scalars(select(User).where(User.name == "operator")).one().active = False
        assert operator.get("/console", follow_redirects=False).status_code == 303
    assert len(audits(db_url, "drill.schedule")) == 1
    assert client.get("/console/alerts/not-a-number").status_code == 422  # never a 500


def test_preview_and_confirmation_warn_when_an_sms_takes_two_segments(
    client: TestClient, db_url: str
) -> None:
    """Issue 15: a long area pushes the Japanese SMS past one segment; the preview and the
    confirmation page say so, with how many characters over; nothing is written."""
    csrf = sign_in(client, "operator")
    fields = {
        "template": "earthquake",
        "var_intensity": "6強",
        "var_area": "釜利谷東・六浦東・六浦南の土砂災害警戒区域と周辺の急傾斜地",
        "audience": "district:西柴",
        "status": "Exercise",
        "channels": ["sms", "email"],
        "mode": "cascade",
        "ack_within": "15m",
    }
    data = client.get("/console/alerts/preview.json", params=fields).json()
    sms = data["messages"]["ja"]["sms"]
    over = sms_units(sms["text"]) - 70
    assert sms["segments"] == 2 and over > 0
    assert sms["note"] == f"日本語のSMSが2通分になります（1通分を{over}字超過）"
    confirm = client.post("/console/alerts/confirm", data={**fields, "csrf_token": csrf})
    assert confirm.status_code == 200 and f"1通分を{over}字超過" in confirm.text
    assert count(db_url, Alert) == 0


def test_questionnaires_are_chosen_previewed_per_kind_and_issued(
    client: TestClient, db_url: str
) -> None:
    """Issue 16: the issue form offers the questionnaires; the preview and the confirmation
    show each kind of organization in the audience the questions it will be asked."""
    csrf = sign_in(client, "operator")
    form = client.get("/console/alerts/new")
    assert form.status_code == 200 and 'value="damage-report"' in form.text
    fields = {
        "template": "earthquake", "var_intensity": "6強", "var_area": "金沢区全域",
        "audience": "all", "status": "Exercise", "channels": ["sms"], "mode": "blast",
        "ack_within": "15m", "questions": ["damage-report", "base-status"],
    }  # fmt: skip
    data = client.get("/console/alerts/preview.json", params=fields).json()
    # Only associations in this audience: base-status asks them nothing, so only damage-report.
    assert data["questions"] == {
        "association": [
            "人的被害（必須）",
            "建物被害（必須）",
            "火災（必須）",
            "道路・がけ崩れ",
            "支援が必要なこと",
        ]
    }
    confirm = client.post("/console/alerts/confirm", data={**fields, "csrf_token": csrf})
    assert confirm.status_code == 200 and "自治会町内会: 人的被害（必須）" in confirm.text
    assert confirm.text.count('name="questions"') == 2  # carried to the issue
    unknown = client.get("/console/alerts/preview.json", params={**fields, "questions": "x"})
    assert unknown.status_code == 422 and "質問票" in unknown.json()["error"]
    issued = client.post(
        "/console/alerts",
        data={**fields, "confirmed": "yes", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert issued.status_code == 303, issued.text
    with transaction(db_url) as s:
        alert = s.scalars(select(Alert)).one()
        assert alert.questions == ["damage-report", "base-status"]
