"""Situation reports end to end in the web app (issue 16), on SQLite and PostgreSQL: an
exercise with damage-report and base-status; answers by the link's form, by SMS (`1 2 0 1`,
`１　２　０　１`, `避難者 45`) and by an operator; a revised answer; the API's tally equals
what was sent, per district and kind; bad answers are refused with nothing stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator
from typer.testing import CliRunner

from relay.accounts.users import create_user
from relay.alerts.issuing import IssueError, IssueRequest, issue_alert
from relay.cli import app as cli_app
from relay.config import Settings, load_settings
from relay.db import transaction
from relay.directory.audience import parse_audience
from relay.directory.csv_format import parse_directory
from relay.directory.store import apply_directory
from relay.models import Answer, AuditEvent, Organization, Recipient
from relay.replies.links import make_token
from relay.web.app import create_app

PUBLIC = "https://relay.example.jp"
SID = "AC" + "5" * 32
TOKEN = "questions-test-token"
SECRET = "questions-test-secret-key-0123"
CSV = (
    "org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,priority,"
    "mobile,landline,email,language\n"
    "a1,西柴自治会,association,西柴,,,山田 一郎,会長,1,090-9999-0101,,,ja\n"
    "a2,六浦自治会,association,六浦,,,佐藤 花子,会長,1,090-9999-0102,,,ja\n"
    "b1,六浦地域防災拠点,disaster_base,六浦,,,鈴木 次郎,委員長,1,090-9999-0103,,,ja\n"
)


@pytest.fixture
def relay(
    db_url: str,
) -> Iterator[tuple[TestClient, Settings, int, dict[str, int], dict[str, str]]]:
    settings = load_settings(
        {
            "RELAY_DATABASE_URL": db_url,
            "RELAY_PUBLIC_URL": PUBLIC,
            "TWILIO_ACCOUNT_SID": SID,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "RELAY_SECRET_KEY": SECRET,
        }
    )
    with transaction(db_url) as session:
        apply_directory(session, parse_directory(CSV.encode()), actor="test")
        alert = issue_alert(
            session,
            settings,
            IssueRequest(
                template="earthquake", variables={"intensity": "6強", "area": "金沢区全域"},
                audience=parse_audience("all"), channels=("sms",), mode="blast",
                status="Exercise", ack_within=timedelta(minutes=30),
                questions=("damage-report", "base-status"),
            ),
        )  # fmt: skip
        recipients = {
            code: rid
            for rid, code in session.execute(
                select(Recipient.id, Organization.code)
                .join(Organization, Organization.id == Recipient.organization_id)
                .where(Recipient.alert_id == alert.id)
            )
        }
        alert_id = alert.id
        _, token = create_user(session, "op", "operator", actor="test")
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings), base_url="http://internal:8000") as client:
        yield client, settings, alert_id, recipients, auth


def sms(client: TestClient, number: str, body: str, sid: str) -> str:
    params = {"MessageSid": sid, "AccountSid": SID, "From": number, "To": "+815000000000",
              "Body": body, "NumSegments": "1"}  # fmt: skip
    url = PUBLIC + "/webhooks/twilio/sms"
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    response = client.post(
        "/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 200, response.text
    return response.text


def stored(db_url: str) -> list[tuple[str, str, Any]]:
    with transaction(db_url) as session:
        rows = session.execute(
            select(Organization.code, Answer.question_id, Answer.number, Answer.text)
            .join(Organization, Organization.id == Answer.organization_id)
            .order_by(Answer.id)
        ).all()
    return [(code, q, number if number is not None else text) for code, q, number, text in rows]


def tally(db_url: str, alert_id: int) -> dict[str, Any]:
    from relay.models import Alert
    from relay.reports.answers import answer_tally

    with transaction(db_url) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        return answer_tally(session, alert)


def test_link_form_shows_each_kind_its_questions(relay) -> None:
    client, _, _, recipients, _ = relay
    association = client.get(f"/a/{make_token(SECRET, recipients['a1'], 'sms')}")
    base = client.get(f"/a/{make_token(SECRET, recipients['b1'], 'sms')}")
    assert association.status_code == base.status_code == 200
    assert "人的被害" in association.text and "避難者数" not in association.text
    assert "人的被害" in base.text and "避難者数" in base.text and "開設状況" in base.text


def test_answers_by_link_sms_and_operator_make_the_tally(relay, db_url: str) -> None:
    client, _, alert_id, recipients, auth = relay
    base_link = f"/a/{make_token(SECRET, recipients['b1'], 'sms')}"
    # The base: by the link's form (answering acknowledges), then a revision.
    form = {"q_injured": "1", "q_buildings": "2", "q_fire": "2", "q_opened": "1",
            "q_sheltering": "30", "q_supplies": "毛布"}  # fmt: skip
    first = client.post(f"{base_link}/answers", data=form)
    assert first.status_code == 200 and "報告を受け付けました" in first.text
    assert 'value="30"' in first.text  # the form shows what counts now
    revised = client.post(f"{base_link}/answers", data={"q_sheltering": "45"})
    assert revised.status_code == 200 and 'value="45"' in revised.text
    # a1 by SMS in question order, full-width; a2 by name, then by the keypad-like order.
    thanks = sms(client, "+819099990101", "２　２　０　１", "SM" + "1" * 32)
    assert "回答3件を受け付けました" in thanks
    sms(client, "+819099990102", "人的 3 火災 1", "SM" + "2" * 32)
    # An operator enters a2's roads answer heard by phone (CLI as the API would).
    entered = client.post(
        f"/api/v1/alerts/{alert_id}/answers",
        json={"org": "a2", "answers": {"roads": 1, "needs": "がれき撤去"}},
        headers=auth,
    )
    assert entered.status_code == 200, entered.text
    picture = tally(db_url, alert_id)
    by_id = {q["id"]: q for q in picture["questions"]}
    assert by_id["injured"]["options"] == {"1": 1, "2": 1, "3": 1}
    assert by_id["injured"]["by_district"]["六浦"]["options"] == {"1": 1, "2": 0, "3": 1}
    assert by_id["sheltering"]["sum"] == 45 and by_id["sheltering"]["answered"] == 1  # revised
    assert by_id["sheltering"]["asked"] == 1  # bases only
    assert by_id["fire"]["options"] == {"1": 1, "2": 1}
    assert by_id["roads"]["by_kind"]["association"]["options"] == {"1": 2, "2": 0}
    assert [t["text"] for t in by_id["needs"]["texts"]] == ["がれき撤去"]
    critical = {(c["org"], c["question"]) for c in picture["critical"]}
    assert critical == {("a1", "injured"), ("a2", "injured"), ("a2", "fire")}
    # a1 skipped the fire (0) and a2 gave no building answer: both acknowledged (an answer
    # acknowledges) but have not reported everything required; the base has.
    assert picture["organizations_answered_required"] == 1
    missing = picture["acknowledged_without_required_answers"]
    assert [(m["org"], m["questions"]) for m in missing] == [
        ("a1", ["fire"]),
        ("a2", ["buildings"]),
    ]
    # Every version is kept: the base's two sheltering answers are both stored.
    assert [v for code, q, v in stored(db_url) if q == "sheltering"] == [30, 45]
    # The same figures over the API and the CLI.
    api = client.get(f"/api/v1/alerts/{alert_id}/answers", headers=auth)
    assert api.status_code == 200 and api.json() == picture
    audit = _count(db_url, AuditEvent, AuditEvent.action == "alert.answer")
    assert audit == 1


def test_an_acknowledgement_without_answers_is_listed_as_not_reported(relay, db_url) -> None:
    client, _, alert_id, _, _ = relay
    assert "受け付けました" in sms(client, "+819099990101", "1", "SM" + "3" * 32)
    picture = tally(db_url, alert_id)
    missing = picture["acknowledged_without_required_answers"]
    assert [(m["org"], m["questions"]) for m in missing] == [
        ("a1", ["injured", "buildings", "fire"])
    ]
    assert stored(db_url) == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("4 1 1", "人的被害: 1〜3の番号で答えてください"),
        ("1 1 1 1 1 1 1 1 1", "回答は4問分です"),
    ],
)
def test_an_sms_answer_that_does_not_fit_stores_nothing_and_says_why(
    relay, db_url: str, body: str, says: str
) -> None:
    client, _, alert_id, _, _ = relay
    reply = sms(client, "+819099990101", body, "SM" + "4" * 32)
    assert says in reply and "例: 1 2 0 3" in reply
    assert stored(db_url) == []
    assert tally(db_url, alert_id)["organizations_answered_required"] == 0


@pytest.mark.parametrize(
    ("form", "status", "says"),
    [
        ({"q_sheltering": "9999"}, 422, "避難者数: 0〜5000で答えてください"),
        ({"q_opened": "7"}, 422, "開設状況: 1〜3の番号で答えてください"),
        ({"q_colour": "red"}, 422, "はこの団体に聞いていません"),
        ({}, 422, "回答がありません"),
    ],
)
def test_a_bad_form_is_refused_with_nothing_stored(relay, db_url, form, status, says) -> None:
    client, _, _, recipients, _ = relay
    link = f"/a/{make_token(SECRET, recipients['b1'], 'sms')}"
    response = client.post(f"{link}/answers", data=form)
    assert response.status_code == status and says in response.text
    assert stored(db_url) == []
    with transaction(db_url) as session:
        assert session.get(Recipient, recipients["b1"]).acknowledged_at is None


def test_a_tampered_or_foreign_token_cannot_answer(relay, db_url: str) -> None:
    client, _, _, recipients, _ = relay
    forged = make_token("another-secret-key-0123456", recipients["b1"], "sms")
    assert client.post(f"/a/{forged}/answers", data={"q_injured": "1"}).status_code == 404
    # a1's own link cannot answer a base's question: a1 is not asked it.
    own = f"/a/{make_token(SECRET, recipients['a1'], 'sms')}"
    refused = client.post(f"{own}/answers", data={"q_sheltering": "10"})
    assert refused.status_code == 422 and "はこの団体に聞いていません" in refused.text
    assert stored(db_url) == []


def test_unknown_questionnaire_is_refused_at_issue(db_url: str) -> None:
    settings = load_settings({"RELAY_DATABASE_URL": db_url, "RELAY_SECRET_KEY": SECRET})
    with transaction(db_url) as session:
        apply_directory(session, parse_directory(CSV.encode()), actor="test")
    with transaction(db_url) as session, pytest.raises(IssueError, match="damage-report"):
        issue_alert(
            session,
            settings,
            IssueRequest(template="drill", audience=parse_audience("all"), questions=("weather",)),
        )


def test_cli_answers_csv_and_operator_entry(relay, db_url: str, monkeypatch) -> None:
    _, _, alert_id, _, _ = relay
    monkeypatch.setenv("RELAY_DATABASE_URL", db_url)
    runner = CliRunner()
    entered = runner.invoke(
        cli_app, ["alert", "answer", str(alert_id), "--org", "b1", "sheltering=12", "opened=1"]
    )
    assert entered.exit_code == 0, entered.stderr
    bad = runner.invoke(cli_app, ["alert", "answer", str(alert_id), "--org", "b1", "opened=9"])
    assert bad.exit_code == 1 and "開設状況" in bad.stderr
    table = runner.invoke(cli_app, ["alert", "answers", str(alert_id), "--csv"])
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].startswith("org,name,district,kind,人的被害")
    base = next(line for line in lines if line.startswith("b1,"))
    assert "開設済み" in base and "12人" in base


def _count(db_url: str, model: type, *where: Any) -> int:
    with transaction(db_url) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"org": "a1", "answers": {"injured": 9}}, "人的被害: 1〜3の番号で答えてください"),
        ({"org": "a1", "answers": {"sheltering": 5}}, "はこの団体に聞いていません"),
        ({"org": "zz", "answers": {"injured": 1}}, "organization zz is not among"),
        ({"org": "a1", "answers": {}}, "answers"),
    ],
)
def test_an_operator_entry_that_does_not_fit_is_422(relay, db_url: str, body, says) -> None:
    client, _, alert_id, _, auth = relay
    response = client.post(f"/api/v1/alerts/{alert_id}/answers", json=body, headers=auth)
    assert response.status_code == 422 and says in response.text
    assert (
        stored(db_url) == []
        and _count(db_url, AuditEvent, AuditEvent.action == "alert.answer") == 0
    )


def test_answers_to_a_cancelled_alert_are_kept_as_a_report_only(relay, db_url: str) -> None:
    client, settings, alert_id, _, _ = relay
    from relay.alerts.lifecycle import cancel_alert
    from relay.models import Alert, InboundMessage

    with transaction(db_url) as session:
        cancel_alert(session, settings, alert_id, "test")
        reference = session.get(Alert, alert_id).reference
    reply = sms(client, "+819099990101", f"{reference} 1 1 2 2", "SM" + "6" * 32)
    assert "この連絡は取り消されました" in reply
    assert stored(db_url) == []
    with transaction(db_url) as session:
        kept = session.scalars(select(InboundMessage)).one()
        assert kept.interpretation == "report" and "1 1 2 2" in kept.body


def test_the_report_gains_the_tallies_and_the_time_to_the_required_answers(
    relay, db_url: str
) -> None:
    from relay.models import Alert
    from relay.replies.answers import record_answers
    from relay.reports.formats import to_csv, to_html
    from relay.reports.tally import alert_report

    _, _, alert_id, recipients, _ = relay
    with transaction(db_url) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        issued = alert.sent_at
        for code, minutes, answers in (
            ("a1", 2, {"injured": 2, "buildings": 1, "fire": 2}),
            ("a2", 4, {"injured": 1, "buildings": 1}),  # the fire never answered
            ("b1", 6, {"injured": 1, "buildings": 3, "fire": 2, "opened": 1, "sheltering": 45}),
        ):
            recipient = session.get(Recipient, recipients[code])
            at = issued + timedelta(minutes=minutes)
            record_answers(session, alert, recipient, answers, "link", at, channel="sms")
        # A revision later does not make the base slower: its first complete set counts.
        b1 = session.get(Recipient, recipients["b1"])
        record_answers(
            session, alert, b1, {"sheltering": 50}, "link", issued + timedelta(minutes=20)
        )
        report = alert_report(session, alert)
    # a1 complete at 2 min, b1 at 6; a2 never (no fire answer): median of 120 and 360 s.
    assert report["time_to_required_answers_s"] == {"median": 240.0, "p90": 360.0}
    assert report["answers"]["organizations_answered_required"] == 2
    html, csv_text = to_html(report), to_csv(report)
    assert (
        "状況の報告" in html and "必須の報告: 2 / 3 団体" in html and "人的被害: 負傷者あり" in html
    )
    assert "answer,injured.2 負傷者あり,3,3,1" in csv_text
    assert "answer,sheltering.sum,1,1,50" in csv_text
