"""A JMA bulletin's life in the relay (relay/jma/ingest.py), on SQLite and PostgreSQL: what
each bulletin does with the default Kanazawa rules and default settings — an automatic
alert, nothing, an update, a cancel — and that the refused ones change nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from relay.config import Settings, load_settings
from relay.db import transaction
from relay.directory.csv_format import parse_directory
from relay.directory.store import apply_directory
from relay.jma.ingest import Ingested, ingest_document
from relay.models import Alert, AlertDraft, AuditEvent, Delivery, JmaBulletin, Recipient
from simulator.jma import vxse53
from tests.conftest import SHARED

DIRECTORY = """\
org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,priority,mobile,landline,email,\
language
a1,六浦東自治会,association,六浦,,cliff-zone,会長A,会長,1,090-1111-0001,,,ja
a2,西柴自治会,association,西柴,,,会長B,会長,1,090-1111-0002,,,ja
b1,六浦小学校拠点,disaster_base,六浦,,,委員長C,拠点運営委員長,1,090-1111-0003,,,ja
"""
# One clock for the module, documents and ingest alike (a document made "now" while the
# test runs would be later than NOW + 1 minute in a slow suite).
NOW = datetime.now(UTC)
SHARED_JMA = SHARED / "jma"


@pytest.fixture
def ward(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("RELAY_DATABASE_URL", db_url)
    monkeypatch.setenv("RELAY_WORKDIR", str(tmp_path))
    settings = load_settings()
    with transaction(db_url) as session:
        apply_directory(session, parse_directory(DIRECTORY.encode()), actor="test")
    return settings


def feed(settings: Settings, document: bytes, now: datetime = NOW) -> Ingested:
    with transaction(settings.database_url) as session:
        return ingest_document(session, settings, document, "test", now)


def count(settings: Settings, model: type, *where: object) -> int:
    with transaction(settings.database_url) as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def alert(settings: Settings, alert_id: int | None) -> Alert:
    assert alert_id is not None
    with transaction(settings.database_url) as session:
        found = session.get(Alert, alert_id)
        assert found is not None
        session.expunge(found)
        return found


def test_a_strong_quake_in_the_ward_issues_the_safety_check_at_once(ward: Settings) -> None:
    done = feed(ward, vxse53("E1", 1, "5-", at=NOW))
    issued = alert(ward, done.alert_id)
    assert issued.status == "Actual" and issued.template == "earthquake"
    assert issued.variables["intensity"] == "5弱"
    assert issued.state == "active"  # three recipients: planned in one slice
    assert count(ward, Recipient, Recipient.alert_id == issued.id) == 3  # everyone
    assert "damage-report" in issued.questions
    assert count(ward, AuditEvent, AuditEvent.action == "jma.alert") == 1


def test_the_same_document_twice_acts_once(ward: Settings) -> None:
    document = vxse53("E1", 1, "5+", at=NOW)
    first, again = feed(ward, document), feed(ward, document)
    assert first.alert_id is not None and again.alert_id is None
    assert again.bulletin_id == first.bulletin_id
    assert count(ward, Alert) == 1 and count(ward, JmaBulletin) == 1


def test_weak_shaking_training_and_test_bulletins_send_nothing(ward: Settings) -> None:
    results = [
        feed(ward, vxse53("E1", 1, "4", at=NOW)),  # below 5弱
        feed(ward, vxse53("E2", 1, "6+", status="訓練", at=NOW)),  # no default rule makes exercises
        feed(ward, vxse53("E3", 1, "6+", status="試験", at=NOW)),
    ]
    assert [r.alert_id for r in results] == [None, None, None]
    assert [r.draft_id for r in results] == [None, None, None]
    assert count(ward, Alert) == 0 and count(ward, AlertDraft) == 0
    assert count(ward, JmaBulletin) == 3  # each recorded, with why
    assert "試験" in results[2].outcome


def test_a_stale_bulletin_is_recorded_only(ward: Settings) -> None:
    old = NOW - timedelta(hours=2)  # the default RELAY_JMA_MAX_AGE is 1h
    done = feed(ward, vxse53("E1", 1, "6-", at=old))
    assert done.alert_id is None and "recorded only" in done.outcome
    assert count(ward, Alert) == 0


@pytest.mark.parametrize(
    "document",
    [
        b"<not xml",
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><Report>&a;</Report>',
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"/>',
    ],
    ids=["malformed", "entity", "not-a-report"],
)
def test_a_bad_document_is_refused_and_changes_nothing(ward: Settings, document: bytes) -> None:
    done = feed(ward, document)
    assert done.bulletin_id is None and done.outcome.startswith("refused")
    assert count(ward, JmaBulletin) == 0 and count(ward, Alert) == 0


def test_a_later_serial_updates_only_when_stronger(ward: Settings) -> None:
    first = feed(ward, vxse53("E1", 1, "5-", at=NOW))
    same = feed(ward, vxse53("E1", 2, "5-", at=NOW + timedelta(minutes=1)))
    assert same.alert_id is None and "not stronger" in same.outcome
    assert count(ward, Alert) == 1
    # The provider took the first messages (an update goes to those it reached).
    with transaction(ward.database_url) as session:
        session.execute(
            update(Delivery).where(Delivery.alert_id == first.alert_id).values(sent_at=NOW)
        )
    stronger = feed(ward, vxse53("E1", 3, "6-", at=NOW + timedelta(minutes=2)))
    follow_up = alert(ward, stronger.alert_id)
    assert follow_up.msg_type == "Update" and follow_up.variables["intensity"] == "6弱"
    assert follow_up.references == [alert(ward, first.alert_id).identifier]


def test_an_older_serial_arriving_late_is_recorded_only(ward: Settings) -> None:
    feed(ward, vxse53("E1", 2, "5-", at=NOW + timedelta(minutes=1)))
    late = feed(ward, vxse53("E1", 1, "6+", at=NOW))
    assert late.alert_id is None and "later" in late.outcome
    assert count(ward, Alert) == 1


def test_an_aftershock_acts_only_when_stronger(ward: Settings) -> None:
    feed(ward, vxse53("E1", 1, "5+", at=NOW))
    weaker = feed(ward, vxse53("E2", 1, "5-", at=NOW + timedelta(minutes=30)))
    assert weaker.alert_id is None and "not stronger" in weaker.outcome
    stronger = feed(ward, vxse53("E3", 1, "6-", at=NOW + timedelta(minutes=40)))
    assert alert(ward, stronger.alert_id).msg_type == "Alert"  # a new alert, not an update
    assert count(ward, Alert) == 2


def test_a_cancel_from_jma_cancels_the_alert(ward: Settings) -> None:
    first = feed(ward, vxse53("E1", 1, "5-", at=NOW))
    cancel = feed(ward, vxse53("E1", 0, None, info_type="取消", at=NOW + timedelta(minutes=1)))
    assert alert(ward, first.alert_id).state == "cancelled"
    assert "cancelled" in cancel.outcome
    # A cancel of something never sent is recorded, and touches nothing.
    other = feed(ward, vxse53("E9", 0, None, info_type="取消", at=NOW))
    assert other.alert_id is None and "nothing" in other.outcome


def test_a_lifted_tsunami_advisory_withdraws_its_draft(ward: Settings) -> None:
    """JMA's own samples of 2011-03-11/13 (../shared/jma): 相模湾・三浦半島 津波注意報 makes a
    draft; the 13th's 津波予報 (注意報解除) for the same event takes it back."""
    if not (SHARED_JMA / "32-39_11_02_250206_VTSE41.xml").exists():
        pytest.skip(f"JMA samples not found at {SHARED_JMA} (set RELAY_SHARED_DIR)")
    settings = replace(ward, jma_max_age=None)  # the samples are from 2011
    issued = feed(settings, (SHARED_JMA / "32-39_11_02_250206_VTSE41.xml").read_bytes())
    assert issued.draft_id is not None and "tokyo-bay-tsunami" in issued.outcome
    lifted = feed(settings, (SHARED_JMA / "32-39_11_13_250206_VTSE41.xml").read_bytes())
    assert "withdrawn" in lifted.outcome
    with transaction(settings.database_url) as session:
        draft = session.get(AlertDraft, issued.draft_id)
        assert draft is not None and draft.state == "withdrawn"
    assert count(settings, Alert) == 0


def test_every_shared_sample_fed_in_order_drafts_only_the_tsunami_advisory(
    ward: Settings,
) -> None:
    """All of ../shared/jma fed as `relay jma ingest` would, with no age limit: 訓練 samples,
    other prefectures, quakes felt at 3 in 金沢区, 取消 of bulletins never sent — nothing is
    sent. The one draft is the 2011-03-11 津波注意報 for 相模湾・三浦半島, and the 13th's
    解除 (fed after it) withdraws it. The Atom feed sample is refused as not a Report."""
    files = sorted(SHARED_JMA.glob("*.xml"))
    if not files:
        pytest.skip(f"JMA samples not found at {SHARED_JMA} (set RELAY_SHARED_DIR)")
    settings = replace(ward, jma_max_age=None)
    results = {f.name: feed(settings, f.read_bytes()) for f in files}
    assert [n for n, r in results.items() if r.bulletin_id is None] == ["weather-sample.xml"]
    assert [n for n, r in results.items() if r.alert_id] == []
    assert [n for n, r in results.items() if r.draft_id] == ["32-39_11_02_250206_VTSE41.xml"]
    assert count(settings, Alert) == 0
    with transaction(settings.database_url) as session:
        states = session.scalars(select(AlertDraft.state)).all()
    assert states == ["withdrawn"]
