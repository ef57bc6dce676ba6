"""Issue 17 end to end: JMA's PULL feed (served on 127.0.0.1) brings a 震度5弱 bulletin for
Kanazawa Ward; `relay scheduler` polls it with the default rules and the default age limit,
and the automatic safety check goes out through real workers to the carrier simulator. The
same event's next serial sends nothing more; its 取消 cancels the alert."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import func, select

from relay.db import transaction
from relay.models import Alert, AuditEvent, JmaBulletin
from simulator import Population
from simulator.jma import AtomFeed, vxse53
from tests.harness import Stack, wait_until

pytestmark = pytest.mark.slow

HEADER = (
    "org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,priority,"
    "mobile,landline,email,language"
).split(",")
ORGS = [  # code, kind, mobile
    ("mutsu", "association", "090-9999-2001"),
    ("nishi", "association", "090-9999-2002"),
    ("base1", "disaster_base", "090-9999-2003"),
]
EVENT = "20261207101500"


def _bulletins(url: str) -> list[JmaBulletin]:
    with transaction(url) as session:
        return list(session.scalars(select(JmaBulletin).order_by(JmaBulletin.id)))


def _alerts(url: str) -> list[Alert]:
    with transaction(url) as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


def test_feed_quake_in_the_ward_sends_once_and_its_cancel_stops_it(
    db_url: str, tmp_path: Path
) -> None:
    csv_path = tmp_path / "dir.csv"
    population = Population(speed=10)  # everyone receives and stays silent: the alert
    # stays live until JMA takes the bulletin back
    with csv_path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for code, kind, mobile in ORGS:
            writer.writerow(
                [code, f"{code}会", kind, "六浦", "", "", f"会長{code}", "会長", 1,
                 mobile, "", "", "ja"]
            )  # fmt: skip
    with AtomFeed() as feed:
        env = {"RELAY_JMA_FEEDS": feed.url, "RELAY_JMA_POLL_INTERVAL": "1s"}
        with Stack(db_url, tmp_path, population, scheduler=True, env=env) as stack:
            stack.import_directory(csv_path)
            url = stack.settings.database_url

            first = feed.publish("震源・震度に関する情報", vxse53(EVENT, 1, "5-"))

            def alert_issued() -> bool:
                return len(_alerts(url)) == 1

            wait_until(alert_issued, 60, f"no alert from the feed\n{stack.process_report()}")
            (alert,) = _alerts(url)
            assert alert.status == "Actual" and alert.template == "earthquake"
            assert alert.variables["intensity"] == "5弱"
            assert alert.issued_by.startswith("jma:")
            assert set(alert.questions) >= {"damage-report"}  # the safety check asks
            stack.wait_sent(alert.id, 60)
            sms_to = {r.to for r in stack.sim.log.of_kind("sms")}
            assert sms_to == {"+81" + m.replace("-", "")[1:] for _, _, m in ORGS}

            # The same event's next serial, no stronger: recorded, nothing sent.
            second = feed.publish("震源・震度に関する情報", vxse53(EVENT, 2, "5-"))
            wait_until(lambda: len(_bulletins(url)) == 2, 30, "serial 2 not read")
            assert "not stronger" in _bulletins(url)[1].outcome
            assert len(_alerts(url)) == 1

            # JMA takes it back: the alert is cancelled through the ordinary cancel path.
            third = feed.publish("震源・震度に関する情報", vxse53(EVENT, 0, None, info_type="取消"))

            def cancelled() -> bool:
                return _alerts(url)[0].state == "cancelled"

            wait_until(cancelled, 30, "the 取消 did not cancel the alert")
            notices = [a for a in _alerts(url) if a.msg_type == "Cancel"]
            assert len(notices) == 1 and notices[0].references == [alert.identifier]
            with transaction(url) as session:
                made = session.scalar(
                    select(func.count())
                    .select_from(AuditEvent)
                    .where(
                        AuditEvent.action == "jma.alert", AuditEvent.target == f"alert {alert.id}"
                    )
                )
            assert made == 1  # the audit says which bulletin made the alert
            # Each document fetched once, however many polls saw it.
            assert [feed.fetches.get(p) for p in (first, second, third)] == [1, 1, 1]
            assert feed.fetches["/feed.xml"] >= 3
            assert stack.sim.violations == []
