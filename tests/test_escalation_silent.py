"""An organization is reported silent only once its last call has ended: a person answering
a slow second call (a spoken はい on a bad line) is not reported silent meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from relay.db import transaction
from relay.models import AuditEvent, Delivery, Recipient
from relay.replies import escalation
from tests.test_webhooks import issue_to_everyone, webhook_settings

LANDLINE_ONLY = (
    "org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,priority,"
    "mobile,landline,email,language\n"
    "back,西柴自治会,association,西柴,,,山田 一郎,会長,1,,045-799-0101,,ja\n"
)


def _silent_reports(db_url: str) -> int:
    with transaction(db_url) as session:
        found = session.scalars(select(AuditEvent).where(AuditEvent.action == "alert.org_silent"))
        return len(found.all())


def _calls(db_url: str, alert_id: int) -> list[Delivery]:
    with transaction(db_url) as session:
        stmt = select(Delivery).where(Delivery.alert_id == alert_id, Delivery.channel == "voice")
        calls = list(session.scalars(stmt.order_by(Delivery.attempt)))
        session.expunge_all()
        return calls


def _set_call(db_url: str, call_id: int, state: str, sent_at: datetime) -> None:
    with transaction(db_url) as session:
        call = session.get(Delivery, call_id)
        assert call is not None
        call.state, call.sent_at = state, sent_at


def _call_only_alert(db_url: str, recall_after: timedelta | None) -> int:
    """A cascade of calls to the one landline (2 min to the call's turn end); one slice, so
    the alert is active as it is issued."""
    alert_id, _ = issue_to_everyone(
        db_url,
        webhook_settings(db_url),
        directory=LANDLINE_ONLY,
        channels=("voice",),
        mode="cascade",
        status="Exercise",
        template="drill",
        voice_after=timedelta(minutes=2),
        next_contact_after=timedelta(minutes=4),
        recall_after=recall_after,
    )
    return alert_id


def _tick_at(db_url: str, at: datetime) -> None:
    with transaction(db_url) as session:
        escalation.tick(session, now=at)


def test_silent_only_after_the_second_call_ends(db_url: str) -> None:
    alert_id = _call_only_alert(db_url, recall_after=timedelta(minutes=5))
    start = datetime.now(UTC)
    (first,) = _calls(db_url, alert_id)
    _set_call(db_url, first.id, "no_answer", start)  # nobody home at the first call
    _tick_at(db_url, start + timedelta(minutes=3))  # the call's turn ends: recall pending
    _tick_at(db_url, start + timedelta(minutes=6))  # the second call is placed
    second = _calls(db_url, alert_id)[1]
    assert second.attempt == 2
    # The leader is home and answering, but slowly: the call is still going at the next look.
    _set_call(db_url, second.id, "answered", start + timedelta(minutes=6))
    _tick_at(db_url, start + timedelta(minutes=9))
    assert _silent_reports(db_url) == 0
    with transaction(db_url) as session:
        (recipient,) = session.scalars(select(Recipient).where(Recipient.alert_id == alert_id))
        assert recipient.state != "exhausted" and recipient.next_action_at is not None
    # The call ended without an acknowledgement: now, and only now, the ward is told.
    _set_call(db_url, second.id, "completed", start + timedelta(minutes=6))
    _tick_at(db_url, start + timedelta(minutes=10))
    assert _silent_reports(db_url) == 1
    _tick_at(db_url, start + timedelta(minutes=20))
    assert _silent_reports(db_url) == 1


def test_a_call_never_heard_of_again_does_not_hold_the_report_for_ever(db_url: str) -> None:
    alert_id = _call_only_alert(db_url, recall_after=None)
    start = datetime.now(UTC)
    (call,) = _calls(db_url, alert_id)
    _set_call(db_url, call.id, "sent", start)  # placed; its status callback is lost
    _tick_at(db_url, start + timedelta(minutes=3))
    assert _silent_reports(db_url) == 0
    _tick_at(db_url, start + escalation.CALL_WAIT + timedelta(minutes=1))
    assert _silent_reports(db_url) == 1
