"""Reminders (issue 16), with the defaults users get (10 minutes, once): exactly the
organizations that acknowledged without answering the required questions are reminded, on the
channel they used, with the alert's marker and link, in one segment; answering in time or
having been reminded already means no reminder."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from relay.alerts.issuing import IssueRequest, issue_alert
from relay.config import Settings, load_settings
from relay.db import transaction
from relay.directory.audience import parse_audience
from relay.directory.csv_format import parse_directory
from relay.directory.store import apply_directory
from relay.models import Alert, Delivery, Organization, OutboxMessage, Recipient
from relay.replies import acks, reminders
from relay.replies.answers import record_answers
from relay.replies.links import make_token

SECRET = "reminders-test-secret-key-0123"
CSV = (
    "org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,priority,"
    "mobile,landline,email,language\n"
    "a1,西柴自治会,association,西柴,,,山田 一郎,会長,1,090-9999-0201,,a1@example.jp,ja\n"
    "a2,六浦自治会,association,六浦,,,佐藤 花子,会長,1,090-9999-0202,,,ja\n"
    "a3,釜利谷自治会,association,釜利谷,,,田中 三郎,会長,1,090-9999-0203,,a3@example.jp,en\n"
    "b1,六浦地域防災拠点,disaster_base,六浦,,,鈴木 次郎,委員長,1,090-9999-0204,,,ja\n"
    "w1,金沢区役所,ward_office,金沢,,,当番 職員,当番,1,090-9999-0205,,duty@example.jp,ja\n"
)


def setup(db_url: str, **request: object) -> tuple[Settings, int, dict[str, int], datetime]:
    settings = load_settings({"RELAY_DATABASE_URL": db_url, "RELAY_SECRET_KEY": SECRET})
    with transaction(db_url) as session:
        apply_directory(session, parse_directory(CSV.encode()), actor="test")
        alert = issue_alert(
            session,
            settings,
            IssueRequest(
                template="earthquake", variables={"intensity": "6強", "area": "金沢区全域"},
                audience=parse_audience("all"), channels=("sms", "email"), mode="blast",
                status="Exercise", ack_within=timedelta(hours=1),
                questions=("damage-report", "base-status"), **request,  # type: ignore[arg-type]
            ),
        )  # fmt: skip
        ids = dict(
            session.execute(
                select(Organization.code, Recipient.id)
                .join(Recipient, Recipient.organization_id == Organization.id)
                .where(Recipient.alert_id == alert.id)
            ).all()
        )
        return settings, alert.id, ids, alert.sent_at


def act(db_url: str, alert_id: int, ids: dict[str, int], at: datetime) -> None:
    """a1 acknowledges by SMS, a3 by the email link; b1 answers everything required by link;
    a2 stays silent."""
    with transaction(db_url) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        get = lambda code: session.get(Recipient, ids[code])  # noqa: E731
        acks.acknowledge(session, get("a1"), "sms_reply", "ack", at)
        acks.acknowledge(session, get("a3"), "link", "ack", at, channel="email")
        answers = {"injured": 1, "buildings": 1, "fire": 2, "opened": 1, "sheltering": 20}
        record_answers(session, alert, get("b1"), answers, "link", at, channel="sms")


def tick(db_url: str, settings: Settings, now: datetime) -> list[Delivery]:
    with transaction(db_url) as session:
        reminders.tick(session, settings, now)
    with transaction(db_url) as session:
        return list(
            session.scalars(select(Delivery).where(Delivery.attempt > 1).order_by(Delivery.id))
        )


def test_reminded_once_after_ten_minutes_on_the_channel_used(db_url: str) -> None:
    settings, alert_id, ids, sent = setup(db_url)  # the defaults: 10 minutes, once
    assert timedelta(minutes=10) == reminders.REMIND_AFTER and reminders.REMINDERS == 1
    at = sent + timedelta(minutes=1)
    act(db_url, alert_id, ids, at)
    assert tick(db_url, settings, at + timedelta(minutes=9, seconds=59)) == []
    sent_now = tick(db_url, settings, at + timedelta(minutes=10))
    by_recipient = {d.recipient_id: d for d in sent_now}
    assert set(by_recipient) == {ids["a1"], ids["a3"]}  # a2 silent, b1 answered
    sms, email = by_recipient[ids["a1"]], by_recipient[ids["a3"]]
    assert (sms.channel, sms.attempt, sms.state) == ("sms", 2, "queued")
    assert sms.body.startswith("【訓練】被害報告の送信をお願いします\n") and sms.segments == 1
    assert sms.body.endswith(f"/a/{make_token(SECRET, ids['a1'], 'sms')}")
    assert (
        email.channel == "email" and email.subject == "【訓練】DRILL Please send your damage report"
    )
    assert email.body.endswith(f"/a/{make_token(SECRET, ids['a3'], 'email')}")
    with transaction(db_url) as session:
        batches = [
            o.payload["ids"]
            for o in session.scalars(select(OutboxMessage))
            if o.topic == "send_batch"
        ]
    assert [sms.id] in batches and [email.id] in batches
    # Once only (the default), however long they stay without answering.
    assert len(tick(db_url, settings, at + timedelta(hours=1))) == 2


def test_twice_when_asked_and_not_after_answering(db_url: str) -> None:
    settings, alert_id, ids, sent = setup(db_url, reminders=2, remind_after=timedelta(minutes=5))
    act(db_url, alert_id, ids, sent)
    assert len(tick(db_url, settings, sent + timedelta(minutes=5))) == 2
    assert len(tick(db_url, settings, sent + timedelta(minutes=9))) == 2  # not yet the second
    with transaction(db_url) as session:  # a3 answers after the first reminder
        alert = session.get(Alert, alert_id)
        assert alert is not None
        answers = {"injured": 1, "buildings": 1, "fire": 2}
        record_answers(session, alert, session.get(Recipient, ids["a3"]), answers, "link", sent)
    second = tick(db_url, settings, sent + timedelta(minutes=10))
    assert [(d.recipient_id, d.attempt) for d in second[2:]] == [(ids["a1"], 3)]
    assert len(tick(db_url, settings, sent + timedelta(hours=1))) == 3  # two at most


@pytest.mark.parametrize("reminders_", [-1, 3])
def test_a_reminder_count_out_of_range_is_refused(db_url: str, reminders_: int) -> None:
    from relay.alerts.issuing import IssueError

    with pytest.raises(IssueError, match="reminders: 0, 1 or 2"):
        setup(db_url, reminders=reminders_)


def test_the_deadline_summary_names_who_has_not_reported(db_url: str) -> None:
    from relay.alerts.deadlines import summarize_due

    settings, alert_id, ids, sent = setup(db_url)
    act(db_url, alert_id, ids, sent)
    with transaction(db_url) as session:
        assert summarize_due(session, settings, sent + timedelta(hours=1)) == 1
    with transaction(db_url) as session:
        summary = session.scalars(select(Alert).where(Alert.template == "staff-summary")).one()
        assert summary.variables["unreported_count"] == "2"
        assert summary.variables["unreported_orgs"] == "西柴自治会、釜利谷自治会"
        email = session.scalars(
            select(Delivery).where(Delivery.alert_id == summary.id, Delivery.channel == "email")
        ).one()
    assert "応答はあったが必須の報告がない団体が 2 団体あります。" in email.body
    assert "・西柴自治会" in email.body and "・釜利谷自治会" in email.body
