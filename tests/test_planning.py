"""Planning a slice at a time (issue 15): the first slice's sends are queued as the issue
commits, the rest follows from the database; coverage first across slices; a cancel stops
planning; a task that dies or comes twice neither loses nor doubles a recipient."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from relay.alerts.lifecycle import cancel_alert
from relay.alerts.planning import PLAN_SLICE, continue_planning
from relay.db import session_factory, transaction
from relay.delivery.recovery import requeue_orphans
from relay.delivery.states import QUEUED
from relay.models import Alert, Delivery, OutboxMessage, Recipient
from tests.test_webhooks import issue_to_everyone, webhook_settings

ORGS = 1_300  # two contacts each: 2,600 recipients, two slices
HEADER = (
    "org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,priority,"
    "mobile,landline,email,language\n"
)


def _directory() -> str:
    rows = []
    for i in range(ORGS):
        code = f"o{i:04d}"
        rows.append(
            f"{code},自治会{i},association,六浦,,,会長{i},会長,1,"
            f"090-{1000 + i}-0001,,{code}@example.jp,ja\n"
        )
        rows.append(
            f"{code},自治会{i},association,六浦,,,副会長{i},副会長,2,080-{1000 + i}-0002,,,ja\n"
        )
    return HEADER + "".join(rows)


def _issue(db_url: str) -> int:
    alert_id, _ = issue_to_everyone(
        db_url,
        webhook_settings(db_url),
        directory=_directory(),
        template="drill",
        status="Exercise",
        mode="cascade",
        channels=("sms", "voice", "email"),
        ack_within=timedelta(minutes=30),
    )
    return alert_id


def _outbox(db_url: str, alert_id: int) -> list[tuple[str, dict]]:
    with session_factory(db_url)() as session:
        rows = session.execute(
            select(OutboxMessage.topic, OutboxMessage.payload).order_by(OutboxMessage.id)
        ).all()
    return [(t, p) for t, p in rows if p.get("alert_id") == alert_id]


def _planned(db_url: str, alert_id: int) -> Counter[tuple[int, str]]:
    with session_factory(db_url)() as session:
        rows = session.execute(
            select(Delivery.recipient_id, Delivery.channel).where(Delivery.alert_id == alert_id)
        ).all()
    return Counter((r, c) for r, c in rows)


def _plan_next(db_url: str, alert_id: int, start: int | None) -> int:
    with transaction(db_url) as session:
        return continue_planning(session, webhook_settings(db_url), alert_id, start)


def test_the_first_slice_sends_as_the_issue_commits_and_the_rest_follows(db_url: str) -> None:
    alert_id = _issue(db_url)
    with session_factory(db_url)() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        assert (alert.state, alert.planned_recipients) == ("dispatching", PLAN_SLICE)
        recipients = session.execute(
            select(Recipient.id, Recipient.position, Recipient.state).where(
                Recipient.alert_id == alert_id
            )
        ).all()
        queued = set(
            session.scalars(
                select(Delivery.id).where(Delivery.alert_id == alert_id, Delivery.state == QUEUED)
            )
        )
    # The whole audience is committed with the alert, primaries first (coverage first).
    assert len(recipients) == 2 * ORGS
    primaries = sorted(p for _, p, s in recipients if s != "waiting")
    assert primaries == list(range(ORGS))
    # Only the first slice is planned, and every one of its sends is in the outbox already,
    # behind the task that plans the next slice.
    first_slice = {rid for rid, p, _ in recipients if p < PLAN_SLICE}
    assert {rid for rid, _ in _planned(db_url, alert_id)} == first_slice
    rows = _outbox(db_url, alert_id)
    assert rows[0] == (
        "dispatch_alert",
        {"alert_id": alert_id, "start": PLAN_SLICE, "queue": "exercises"},
    )
    batched = [i for topic, p in rows if topic == "send_batch" for i in p["ids"]]
    assert sorted(batched) == sorted(queued) and len(queued) == 2 * ORGS  # SMS + email
    # The next slice: the rest, then the alert is active and its timers may run.
    assert _plan_next(db_url, alert_id, PLAN_SLICE) == 2 * ORGS - PLAN_SLICE
    planned = _planned(db_url, alert_id)
    with session_factory(db_url)() as session:
        assert session.get(Alert, alert_id).state == "active"  # type: ignore[union-attr]
    assert {rid for rid, _ in planned} == {rid for rid, _, _ in recipients}
    # primaries: SMS, call, email; alternates: SMS and call — each once
    assert sum(planned.values()) == ORGS * 3 + ORGS * 2 and set(planned.values()) == {1}
    # The same task delivered twice plans nothing more.
    assert _plan_next(db_url, alert_id, PLAN_SLICE) == 0
    assert _planned(db_url, alert_id) == planned


def test_a_cancel_during_planning_stops_it(db_url: str) -> None:
    alert_id = _issue(db_url)
    with transaction(db_url) as session:
        cancel_alert(session, webhook_settings(db_url), alert_id, "test")
    assert _plan_next(db_url, alert_id, PLAN_SLICE) == 0
    with session_factory(db_url)() as session:
        states = Counter(
            session.scalars(select(Delivery.state).where(Delivery.alert_id == alert_id))
        )
        beyond = session.scalar(
            select(func.count())
            .select_from(Delivery)
            .join(Recipient, Recipient.id == Delivery.recipient_id)
            .where(Delivery.alert_id == alert_id, Recipient.position >= PLAN_SLICE)
        )
    assert beyond == 0 and states.get(QUEUED, 0) == 0 and states["cancelled"] > 0


def test_planning_that_dies_resumes_without_losing_or_doubling_anyone(db_url: str) -> None:
    alert_id = _issue(db_url)
    before = _planned(db_url, alert_id)
    settings = webhook_settings(db_url)
    # A worker killed while planning: its slice was never committed.
    with session_factory(db_url)() as session:
        assert continue_planning(session, settings, alert_id, PLAN_SLICE) > 0
        session.rollback()
    assert _planned(db_url, alert_id) == before
    # The broker lost the task too: recovery queues the slice again, from where it stands.
    with transaction(db_url) as session:
        requeue_orphans(session)
    assert (
        "dispatch_alert",
        {"alert_id": alert_id, "start": PLAN_SLICE, "queue": "exercises"},
    ) in _outbox(db_url, alert_id)[1:]
    assert _plan_next(db_url, alert_id, PLAN_SLICE) == 2 * ORGS - PLAN_SLICE
    planned = _planned(db_url, alert_id)
    assert sum(planned.values()) == ORGS * 5 and set(planned.values()) == {1}
