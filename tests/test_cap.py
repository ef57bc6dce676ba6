"""CAP 1.2 out and in (issue 6, SPEC 5.2) and the import's refusals (issue 9).

Exports are validated against the OASIS schema read from ../shared/schemas; the relay ships the
same file (relay/cap/CAP-v1.2.xsd, with OASIS's notice) and its import validates with it plus
the one check the XSD cannot make (<references>); generated documents, valid and broken, show
that it refuses exactly what the published schema refuses, plus malformed references.
"""

from __future__ import annotations

import copy
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy import text as sql

from relay import migrate
from relay.alerts import lifecycle
from relay.cap.importing import AlreadyImported, import_alert
from relay.cap.schema import CAP_TIME, XSD_PATH, CapSchemaError, validate
from relay.config import load_settings
from relay.db import engine_for, transaction
from relay.delivery.runtime import get_runtime
from relay.directory.audience import parse_audience
from relay.drills import service
from relay.models import Alert, AuditEvent, Delivery, Recipient
from relay.timefmt import TOKYO
from simulator import Population
from tests.api_client import ApiClient, api_client, row_counts
from tests.conftest import SAMPLE_CSV, SHARED
from tests.harness import Stack

etree = pytest.importorskip("lxml.etree", reason="lxml validates against the XSD")

XSD = Path(os.environ.get("RELAY_CAP_XSD", SHARED / "schemas" / "CAP-v1.2.xsd"))
NS = "urn:oasis:names:tc:emergency:cap:1.2"
C = {"c": NS}
CAP_TYPE = {"Content-Type": "application/cap+xml"}


@pytest.fixture(scope="module")
def xsd():
    """The OASIS schema when ../shared/schemas has it, else None (tests about the schema skip;
    the others still check documents with the relay's own validator)."""
    return etree.XMLSchema(etree.parse(str(XSD))) if XSD.exists() else None


@pytest.fixture(scope="module")
def schema(xsd):
    if xsd is None:
        pytest.skip(f"CAP 1.2 schema not found at {XSD} (../shared/schemas from the project root)")
    return xsd


def assert_valid(schema, document: bytes):
    root = etree.fromstring(document)
    if schema is not None:
        assert schema.validate(root), schema.error_log
    validate(document)  # and the relay's validator, the import's
    return root


@pytest.fixture
def api(db_url: str):
    with api_client(db_url) as client:
        yield client


EVACUATION = {
    "template": "evacuation",
    "variables": {
        "level": "4",
        "area": "釜利谷地区",
        "shelters": "釜利谷第4地域防災拠点、六浦小学校",
    },
    "audience": "district:釜利谷,六浦",
    "channels": ["sms", "email"],
    "mode": "blast",
    "status": "Exercise",
}
EARTHQUAKE = {
    "template": "earthquake",
    "variables": {"intensity": "5強", "area": "金沢区全域"},
    "audience": "kind:hospital",
    "channels": ["sms", "voice", "email"],
    "mode": "cascade",
}


def issue(api: ApiClient, body: dict) -> int:
    response = api.client.post("/api/v1/alerts", json=body, headers=api.auth("operator"))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def export(api: ApiClient, alert_id: int) -> bytes:
    response = api.client.get(f"/api/v1/alerts/{alert_id}.cap", headers=api.auth("viewer"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/cap+xml")
    return response.content


def import_cap(api: ApiClient, document: bytes, role: str = "operator", **params):
    query = {"audience": "kind:hospital", "channels": "sms,email", **params}
    return api.client.post(
        "/api/v1/alerts/cap", params=query, content=document, headers={**api.auth(role), **CAP_TYPE}
    )


def text(root, path: str) -> str:
    found = root.find(path, C)
    assert found is not None, path
    return found.text


def pairs(info, tag: str) -> dict[str, str]:
    return {text(e, "c:valueName"): text(e, "c:value") for e in info.findall(f"c:{tag}", C)}


def cap_sent(alert: Alert) -> str:
    return alert.sent_at.astimezone(TOKYO).replace(microsecond=0).isoformat()


# --- export -------------------------------------------------------------------------------


def test_export_is_valid_cap_and_says_what_the_alert_says(api, db_url, schema) -> None:
    alert_id = issue(api, EVACUATION)
    root = assert_valid(schema, export(api, alert_id))
    with transaction(db_url) as session:
        alert = session.get(Alert, alert_id)
        identifier, reference, sent = alert.identifier, alert.reference, cap_sent(alert)
    assert root.tag == f"{{{NS}}}alert"
    assert text(root, "c:identifier") == identifier
    assert text(root, "c:sender") == "relay@kanazawa.example.jp"  # no display name in CAP
    assert text(root, "c:sent") == sent and sent.endswith("+09:00")
    assert text(root, "c:status") == "Exercise" and text(root, "c:msgType") == "Alert"
    assert text(root, "c:scope") == "Restricted" and "金沢区" in text(root, "c:restriction")
    assert root.find("c:references", C) is None
    infos = root.findall("c:info", C)
    assert [text(i, "c:language") for i in infos] == ["ja-JP", "en-US", "ja-JP-x-easy"]
    ja, en, easy = infos
    assert text(ja, "c:event") == "避難情報" and text(en, "c:event") == "Evacuation information"
    assert text(ja, "c:headline") == "警戒レベル4 避難指示（釜利谷地区）"
    assert text(en, "c:headline") == "Alert level 4: Evacuation instruction (釜利谷地区)"
    assert "警戒(けいかい)レベル4" in text(easy, "c:headline")
    for info in infos:
        assert text(info, "c:category") == "Met" and text(info, "c:responseType") == "Evacuate"
        assert (text(info, "c:urgency"), text(info, "c:severity")) == ("Immediate", "Severe")
        assert text(info, "c:certainty") == "Likely"
        codes = pairs(info, "eventCode")
        assert codes == {"relay:template": "evacuation", "evacuationLevel": "4"}
        assert pairs(info, "parameter")["relay:reference"] == reference
        assert [a.text for a in info.findall("c:area/c:areaDesc", C)] == ["釜利谷", "六浦"]
    # a stable document: the identifier is the alert's, not made per request
    assert export(api, alert_id) == export(api, alert_id)


def test_export_needs_a_token_and_an_alert(api) -> None:
    alert_id = issue(api, EARTHQUAKE)
    assert api.client.get(f"/api/v1/alerts/{alert_id}.cap").status_code == 401
    missing = api.client.get("/api/v1/alerts/999999.cap", headers=api.auth("viewer"))
    assert missing.status_code == 404 and missing.json()["error"] == "no alert 999999"


def test_a_drill_run_exports_as_an_exercise_with_its_run_id(api, db_url, xsd) -> None:
    with transaction(db_url) as session:
        spec = service.ScheduleSpec(
            name="monthly", cron="0 10 1 * *", audience="kind:hospital", channels=("email",)
        )
        service.save_schedule(session, spec, actor="coordinator-1")
        run_id = service.run_now(session, "monthly", actor="coordinator-1").id
    with transaction(db_url) as session:
        alert_id = service.start_run(session, api.settings, run_id)
    root = assert_valid(xsd, export(api, alert_id))
    assert text(root, "c:status") == "Exercise"
    assert f"drill run {run_id}" in text(root, "c:note")
    assert text(root.find("c:info", C), "c:event") == "情報受伝達訓練"


@pytest.mark.slow  # workers and the simulator: the update goes only to those reached
def test_update_and_cancel_reference_the_earlier_message(db_url, tmp_path, xsd) -> None:
    """Updates and cancels are new messages whose <references> name the earlier one as
    sender,identifier,sent (CAP 1.2 3.2.1); the relay sends them only to those reached."""
    with Stack(db_url, tmp_path, Population(speed=10)) as stack:
        stack.import_directory(SAMPLE_CSV)
        first = stack.issue(
            audience="kind:hospital",
            template="earthquake",
            variables={"intensity": "6弱", "area": "金沢区全域"},
            channels=("email",),
            mode="blast",
        )
        stack.wait_sent(first, timeout=60)
        with transaction(db_url) as session:
            update_id = lifecycle.update_alert(
                session, stack.settings, first, "earthquake",
                {"intensity": "6強", "area": "金沢区全域"}, "operator-1",
            ).id  # fmt: skip
        get_runtime().publish_outbox()
        stack.wait_sent(update_id, timeout=60)
        with api_client(db_url, directory=False) as api:
            documents = {i: assert_valid(xsd, export(api, i)) for i in (first, update_id)}
            with transaction(db_url) as session:
                cancel = lifecycle.cancel_alert(session, stack.settings, update_id, "operator-1")
                assert cancel is not None
                cancel_id = cancel.id
            documents[cancel_id] = assert_valid(xsd, export(api, cancel_id))
            # Once cancelled, the update exports as what cancelled it: the notice sent.
            assert export(api, update_id) == export(api, cancel_id)
    with transaction(db_url) as session:
        alerts = {i: session.get(Alert, i) for i in documents}
        triple = {
            i: f"relay@kanazawa.example.jp,{a.identifier},{cap_sent(a)}" for i, a in alerts.items()
        }
    assert text(documents[update_id], "c:msgType") == "Update"
    assert text(documents[update_id], "c:references") == triple[first]
    assert text(documents[cancel_id], "c:msgType") == "Cancel"
    assert text(documents[cancel_id], "c:references") == triple[update_id]
    assert documents[first].find("c:references", C) is None
    headline = text(documents[update_id].find("c:info", C), "c:headline")
    assert "6強" in headline


# --- import -------------------------------------------------------------------------------

ROUND_TRIP_FIELDS = (
    "status msg_type scope note category event urgency severity certainty response_type "
    "headline description instruction language area_desc evacuation_level template variables "
    "audience channels mode answer_options"
).split()


@pytest.mark.parametrize("body", [EARTHQUAKE, EVACUATION], ids=["actual", "exercise"])
def test_export_then_import_gives_the_same_alert(api, db_url, xsd, body) -> None:
    original_id = issue(api, body)
    document = export(api, original_id)
    imported = import_cap(
        api, document, audience=body["audience"], channels=",".join(body["channels"]),
        mode=body["mode"],
    )  # fmt: skip
    assert imported.status_code == 201, imported.text
    new_id = imported.json()["id"]
    assert new_id != original_id
    with transaction(db_url) as session:
        a, b = session.get(Alert, original_id), session.get(Alert, new_id)
        assert {f: getattr(b, f) for f in ROUND_TRIP_FIELDS} == {
            f: getattr(a, f) for f in ROUND_TRIP_FIELDS
        }
        assert b.identifier != a.identifier and b.issued_by == "operator-1"

        def plan(alert_id: int) -> list[tuple[int, str, str]]:
            return sorted(
                session.execute(
                    select(Recipient.contact_id, Delivery.channel, Delivery.state)
                    .join(Delivery, Delivery.recipient_id == Recipient.id)
                    .where(Recipient.alert_id == alert_id)
                ).all()
            )

        assert plan(new_id) == plan(original_id)  # the same people, channels and first steps
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "alert.import_cap")
        ).one()
        assert event.actor == "operator-1" and event.target == f"alert {new_id}"
        assert event.details["source_identifier"] == a.identifier
    # the new alert exports as the same document, but for its own identifier, time, code and
    # deadline (<expires>: a re-issue ends at its own, not at the original's)
    again = assert_valid(xsd, export(api, new_id))
    first = etree.fromstring(document)
    for root in (again, first):
        for path in ("c:identifier", "c:sent"):
            root.remove(root.find(path, C))
        for expires in root.iterfind("c:info/c:expires", C):
            expires.text = "-"
        for value in root.iterfind("c:info/c:parameter/c:value", C):
            if value.getprevious().text == "relay:reference":
                value.text = "-"
    assert etree.tostring(again) == etree.tostring(first)


FOREIGN = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>JP-YOKOHAMA-2026-0042</identifier>
  <sender>bousai@city.yokohama.example.jp</sender>
  <sent>2026-11-29T06:30:00+09:00</sent>
  <status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info>
    <language>en-US</language><category>Geo</category><event>Tsunami</event>
    <urgency>Immediate</urgency><severity>Extreme</severity><certainty>Likely</certainty>
  </info>
  <info>
    <language>ja-JP</language><category>Geo</category><event>津波</event>
    <urgency>Immediate</urgency><severity>Extreme</severity><certainty>Likely</certainty>
    <area><areaDesc>金沢区沿岸部</areaDesc></area>
  </info>
</alert>"""


def test_import_of_another_senders_alert_picks_the_template_from_the_event(api, db_url) -> None:
    response = import_cap(api, FOREIGN.encode())
    assert response.status_code == 201, response.text
    before = row_counts(db_url)
    again = import_cap(api, FOREIGN.encode())  # an upstream retry: one alert per message
    assert again.status_code == 409 and again.json()["alert"] == response.json()["id"]
    assert "already issued" in again.json()["error"]
    assert row_counts(db_url) == before
    with transaction(db_url) as session:
        alert = session.get(Alert, response.json()["id"])
        assert (alert.template, alert.variables, alert.status) == (
            "tsunami", {"area": "金沢区沿岸部"}, "Actual",
        )  # fmt: skip
        assert alert.headline == "津波の危険 ただちに高台へ避難（金沢区沿岸部）"


def test_two_copies_posted_at_once_are_issued_once(db_url) -> None:
    """The second copy arrives while the first is being issued (not yet committed): without
    the unique index on (sender, identifier) both would find no earlier import and both
    would be issued. On PostgreSQL the second waits on the index; SQLite's transactions are
    exclusive, so it waits at its start. Either way it is refused, naming the first."""
    with api_client(db_url):  # the directory
        pass
    settings = load_settings({"RELAY_DATABASE_URL": db_url, "RELAY_SECRET_KEY": "x" * 24})
    args = (FOREIGN.encode(), parse_audience("kind:hospital"), ["email"], "blast")

    def issue_copy() -> int:
        with transaction(db_url) as session:
            return import_alert(session, settings, *args, timedelta(minutes=15), actor="b").id

    with transaction(db_url) as first_session:
        first = import_alert(first_session, settings, *args, timedelta(minutes=15), actor="a")
        first_id = first.id
        with ThreadPoolExecutor(1) as pool:
            second = pool.submit(issue_copy)
            if db_url.startswith("postgresql"):
                wait_until_blocked(db_url)
                assert not second.done()
            first_session.commit()
            with pytest.raises(AlreadyImported, match=f"already issued as alert {first_id}"):
                second.result(timeout=60)
    with transaction(db_url) as session:
        sources = session.execute(
            select(Alert.id).where(Alert.source_identifier == "JP-YOKOHAMA-2026-0042")
        ).all()
    assert [row.id for row in sources] == [first_id]


def wait_until_blocked(db_url: str, timeout: float = 30) -> None:
    """Until some session of this database waits for a lock (the copy, on the index)."""
    deadline = time.monotonic() + timeout
    with engine_for(db_url).connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            ).scalar()
            conn.commit()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the second copy never waited on the first")


def test_an_upgrade_keeps_earlier_imports_refused(api, db_url) -> None:
    """Migration 0003 moves the origin of earlier imports from the audit trail to the alert."""
    response = import_cap(api, FOREIGN.encode())
    assert response.status_code == 201, response.text
    engine_for(db_url).dispose()
    migrate.downgrade(db_url, "0002")
    migrate.upgrade(db_url)
    engine_for(db_url).dispose()
    with transaction(db_url) as session:
        alert = session.get(Alert, response.json()["id"])
        assert (alert.source_sender, alert.source_identifier) == (
            "bousai@city.yokohama.example.jp", "JP-YOKOHAMA-2026-0042",
        )  # fmt: skip
    again = import_cap(api, FOREIGN.encode())
    assert again.status_code == 409 and again.json()["alert"] == response.json()["id"]


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE alert [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol9;</identifier></alert>"""
XXE_FILE = """<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>"""
XXE_PARAMETER = """<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>"""
EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE alert SYSTEM "http://127.0.0.1:9/cap.dtd">
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>"""


def _foreign(**replace: str) -> bytes:
    document = FOREIGN
    for old, new in replace.items():
        assert old.replace("_", ":") in document or old in document
        document = document.replace(old, new)
    return document.encode()


REFUSED = [
    (BILLION_LAUGHS.encode(), 422, "DTD"),
    (XXE_FILE.encode(), 422, "DTD"),
    (XXE_PARAMETER.encode(), 422, "DTD"),
    (EXTERNAL_DTD.encode(), 422, "DTD"),
    (b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'><identifier>", 422, "not well-formed"),
    (b"\xff\xfe\x00garbage", 422, "not well-formed"),
    (b"", 422, "not well-formed"),
    (b"<alert><identifier>x</identifier></alert>", 422, "not a CAP 1.2 alert"),
    (FOREIGN.replace("06:30:00+09:00", "06:30:00.5+09:00").encode(), 422, "<sent>"),
    (FOREIGN.replace("06:30:00+09:00", "06:30:00Z").encode(), 422, "(a zone, no fraction, no Z)"),
    (FOREIGN.replace("<severity>Extreme", "<severity>Huge").encode(), 422, "'Huge' is not an"),
    (FOREIGN.replace("<scope>Public</scope>", "").encode(), 422, "Expected is one of ( <source>"),
    (FOREIGN.replace("<status>Actual", "<status>Draft").encode(), 422, "status Draft"),
    (FOREIGN.replace("<msgType>Alert", "<msgType>Cancel").encode(), 422, "only Alert"),
    (FOREIGN.replace("<area><areaDesc>金沢区沿岸部</areaDesc></area>", "").encode(), 422, "area"),
]


def test_bad_documents_are_refused_with_the_reason_and_nothing_written(api, db_url) -> None:
    before = row_counts(db_url)
    for document, status, reason in REFUSED:  # one client for all: the setup is the cost
        response = import_cap(api, document)
        assert response.status_code == status, (document[:80], response.text)
        assert reason in response.json()["error"], (document[:80], response.text)
    assert row_counts(db_url) == before


def test_import_needs_the_operator_role_xml_and_a_bounded_body(api, db_url) -> None:
    before = row_counts(db_url)
    assert import_cap(api, FOREIGN.encode(), role="viewer").status_code == 403
    assert import_cap(api, FOREIGN.encode(), role="coordinator").status_code == 403
    no_token = api.client.post(
        "/api/v1/alerts/cap", params={"audience": "all"}, content=FOREIGN, headers=CAP_TYPE
    )
    assert no_token.status_code == 401
    as_json = api.client.post(
        "/api/v1/alerts/cap",
        params={"audience": "all"},
        json={"cap": FOREIGN},
        headers=api.auth("operator"),
    )
    assert as_json.status_code == 415 and "application/cap+xml" in as_json.json()["error"]
    padded = FOREIGN.replace("<scope>", "<!--" + "x" * 600_000 + "--><scope>").encode()
    assert import_cap(api, padded).status_code == 413
    streamed = api.client.post(  # chunked, no Content-Length: the endpoint still stops reading
        "/api/v1/alerts/cap",
        params={"audience": "all"},
        content=iter([padded[:300_000], padded[300_000:]]),
        headers={**api.auth("operator"), **CAP_TYPE},
    )
    assert streamed.status_code == 413
    no_audience = api.client.post(
        "/api/v1/alerts/cap", content=FOREIGN, headers={**api.auth("operator"), **CAP_TYPE}
    )
    assert no_audience.status_code == 422 and no_audience.json()["details"][0]["field"].endswith(
        "audience"
    )
    assert import_cap(api, FOREIGN.encode(), audience="kind:temple").status_code == 422
    assert import_cap(api, FOREIGN.encode(), channels="fax").status_code == 422
    assert row_counts(db_url) == before


# --- Hypothesis: whatever arrives, a clear 4xx and nothing written --------------------------

ENTITY_TRICKS = st.sampled_from(
    [
        '<!DOCTYPE alert [<!ENTITY e SYSTEM "file:///etc/hostname">]>',
        '<!DOCTYPE alert [<!ENTITY e "{}">]>',
        '<!DOCTYPE alert [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x"> %p;]>',
        '<!DOCTYPE alert SYSTEM "file:///etc/passwd">',
        '<!DOCTYPE alert PUBLIC "-//X//Y" "http://127.0.0.1:9/x.dtd">',
        "<!DOCTYPE alert>",
    ]
)


@st.composite
def entity_attacks(draw) -> bytes:
    """A DTD (entity bombs of any depth and width, external entities) ahead of a document that
    uses the entity where a value goes."""
    depth, width = draw(st.integers(1, 12)), draw(st.integers(1, 30))
    bomb = "".join(
        f'<!ENTITY b{i} "{f"&b{i - 1};" * width if i else "lol"}">' for i in range(depth)
    )
    doctype = draw(st.one_of(ENTITY_TRICKS, st.just(f"<!DOCTYPE alert [{bomb}]>")))
    use = draw(st.sampled_from(["&e;", f"&b{depth - 1};", "&amp;", ""]))
    body = FOREIGN.split("?>", 1)[1].replace("JP-YOKOHAMA-2026-0042", use or "x")
    return f'<?xml version="1.0"?>{doctype}{body}'.encode()


@st.composite
def broken_documents(draw) -> bytes:
    data = FOREIGN.encode()
    how = draw(st.sampled_from(["truncate", "garble", "bytes"]))
    if how == "truncate":
        return data[: draw(st.integers(0, len(data) - 10))]
    if how == "garble":
        at = draw(st.integers(0, len(data)))
        junk = draw(st.sampled_from([b"<", b"&", b"</x>", b"<!--", b"\x00", b"]]>", b"<![CDATA["]))
        return data[:at] + junk + data[at:]
    return draw(st.binary(max_size=200))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=st.one_of(entity_attacks(), broken_documents()))
def test_hypothesis_malformed_xml_and_entity_attacks_are_refused(api, db_url, document) -> None:
    before = row_counts(db_url)
    response = import_cap(api, document)
    if response.status_code == 201:  # a garbling that left a valid document (e.g. in a comment)
        return
    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith(("refused:", "not well-formed", "not valid CAP"))
    assert row_counts(db_url) == before


# --- the relay's validator says what the XSD says ------------------------------------------

FULL = """<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
<identifier>X-1</identifier><sender>a@example.jp</sender><sent>2026-11-29T06:30:00+09:00</sent>
<status>Exercise</status><msgType>Update</msgType><source>drill</source><scope>Restricted</scope>
<restriction>leaders</restriction><addresses>a b</addresses><code>c1</code><code>c2</code>
<note>drill run 7</note><references>a@example.jp,X-0,2026-11-29T06:00:00+09:00</references>
<incidents>i1</incidents>
<info><language>ja-JP</language><category>Geo</category><category>Safety</category><event>地震</event>
<responseType>Assess</responseType><urgency>Immediate</urgency><severity>Severe</severity>
<certainty>Observed</certainty><audience>leaders</audience>
<eventCode><valueName>evacuationLevel</valueName><value>4</value></eventCode>
<effective>2026-11-29T06:30:00+09:00</effective><onset>2026-11-29T06:31:00+09:00</onset>
<expires>2026-11-30T06:30:00-03:30</expires><senderName>区</senderName><headline>h</headline>
<description>d</description><instruction>i</instruction><web>https://example.jp/a</web>
<contact>045</contact><parameter><valueName>p</valueName><value>v</value></parameter>
<resource><resourceDesc>map</resourceDesc><mimeType>image/png</mimeType><size>10</size>
<uri>https://example.jp/m.png</uri><derefUri>AAAA</derefUri><digest>ff</digest></resource>
<area><areaDesc>西柴</areaDesc><polygon>1,1 2,2 3,1 1,1</polygon><circle>1,1 5</circle>
<geocode><valueName>JISX0402</valueName><value>14108</value></geocode>
<altitude>10.5</altitude><ceiling>-.5</ceiling></area></info>
<info><category>Met</category><event>e</event><urgency>Past</urgency><severity>Minor</severity>
<certainty>Unknown</certainty></info>
<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><x/></Signature>
</alert>"""
NAMES = sorted({e.tag.split("}")[1] for e in etree.fromstring(FULL).iter() if NS in e.tag})
VALUES = st.one_of(
    st.sampled_from(
        "Actual Exercise System Test Draft Alert Update Cancel Ack Error Public Restricted "
        "Private Geo Met CBRNE Other Evacuate AllClear None Immediate Unknown Extreme Observed "
        "ja-JP ja-JP-x-easy en- 123456789 x 10 -3 +7 1.5 .5 5. 1e3 ' Actual' 24:00:00".split()
    ),
    st.from_regex(
        r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[-+,][0-9]{2}:[0-9]{2}\Z"
    ),
    st.sampled_from(
        [
            "2024-02-29T00:00:00+09:00",
            "2023-02-29T00:00:00+09:00",
            "2026-12-31T23:59:59+14:00",
            "2026-12-31T23:59:59+14:01",
            "2026-12-31T24:00:00+09:00",
            "0000-01-01T00:00:00+00:00",
            " 2026-11-29T06:30:00+09:00\n",
            "2026-11-29T06:30:00+09:00 x",
            "２０２６-11-29T06:30:00+09:00",
        ]
    ),
    st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=12),
)


@st.composite
def mutated(draw) -> bytes:
    root = etree.fromstring(FULL)
    for _ in range(draw(st.integers(1, 3))):
        elements = [e for e in root.iter() if isinstance(e.tag, str)]
        target = draw(st.sampled_from(elements))
        how = draw(
            st.sampled_from(["drop", "copy", "move", "text", "attr", "rename", "add", "tail"])
        )
        parent = target.getparent()
        if how == "drop" and parent is not None:
            parent.remove(target)
        elif how == "copy" and parent is not None:
            target.addnext(copy.deepcopy(target))
        elif how == "move" and parent is not None:
            parent.remove(target)
            parent.insert(draw(st.integers(0, len(parent))), target)
        elif how == "text" and len(target) == 0 and target.tag.split("}")[1] not in ("web", "uri"):
            target.text = draw(VALUES)  # anyURI: libxml2 checks URI syntax, the relay does not
        elif how == "attr":
            target.set(draw(st.sampled_from(["lang", "id", "{urn:x}y"])), "1")
        elif how == "rename":
            target.tag = (
                f"{{{draw(st.sampled_from([NS, 'urn:x', '']))}}}{draw(st.sampled_from(NAMES))}"
            )
        elif how == "add" and len(target):
            name = draw(st.sampled_from(NAMES))
            target.insert(draw(st.integers(0, len(target))), etree.Element(f"{{{NS}}}{name}"))
        elif how == "tail" and parent is not None:
            target.tail = draw(st.sampled_from(["x", " ", "\n\t"]))
    return etree.tostring(root)


def test_the_full_sample_is_valid(schema) -> None:
    assert_valid(schema, FULL.encode())


def test_the_shipped_schema_is_oasis_unmodified_with_its_notice(schema) -> None:
    """OASIS allows copying the XSD, not changing it: byte for byte the published file."""
    assert XSD_PATH.read_bytes() == XSD.read_bytes()
    notice = (XSD_PATH.parent / "CAP-v1.2.NOTICE").read_text(encoding="utf-8")
    assert "Copyright © OASIS Open 2010. All Rights Reserved." in notice
    assert "may not be modified in any way" in notice


def references_ok(root) -> bool:
    """What the XSD leaves as free text and the relay checks: sender,identifier,sent triples."""
    for element in root.iter(f"{{{NS}}}references"):
        for entry in (element.text or "").split():
            parts = entry.split(",")
            if len(parts) != 3 or not all(parts) or not CAP_TIME.fullmatch(parts[2]):
                return False
    return True


def agree(schema, document: bytes) -> None:
    """The relay refuses exactly what the XSD refuses, plus malformed references."""
    root = etree.fromstring(document)
    expected = schema.validate(root) and (root.tag != f"{{{NS}}}alert" or references_ok(root))
    try:
        validate(document)
        ours = None
    except CapSchemaError as exc:
        ours = str(exc)
    assert (ours is None) == expected, (ours, str(schema.error_log), document.decode())


BAD_REFERENCES = [
    FULL.replace(
        "<references>a@example.jp,X-0,2026-11-29T06:00:00+09:00</references>",
        f"<references>{value}</references>",
    )
    for value in ("X-0", "a@example.jp,X-0", "a,b,2026-11-29", ",X-0,2026-11-29T06:00:00+09:00")
]


@pytest.mark.parametrize("document", BAD_REFERENCES)
def test_malformed_references_are_refused_saying_what_they_should_be(document) -> None:
    with pytest.raises(CapSchemaError, match="not sender,identifier,sent"):
        validate(document.encode())


EFFECTIVE = "<effective>2026-11-29T06:30:00+09:00</effective>"
EDGES = [
    FULL.replace("<language>ja-JP</language>", "<language></language>"),  # XSD default en-US
    FULL.replace("<language>ja-JP</language>", "<language> ja-JP </language>"),  # collapsed
    FULL.replace("<x/></Signature>", f'<x><alert xmlns="{NS}"/></x></Signature>'),  # lax: checked
    FULL.replace("<x/></Signature>", f'<value xmlns="{NS}">v</value></Signature>'),
    *(
        FULL.replace(EFFECTIVE, f"<effective>{when}</effective>")
        for when in (
            "2026-12-31T24:00:00+09:00",  # end of day: valid in XSD 1.0
            "2026-12-31T24:00:01+09:00",
            "2026-12-31T23:59:60+09:00",
            "2026-12-31T23:59:59-14:00",
            "2026-12-31T23:59:59+14:01",
            "0000-01-01T00:00:00+00:00",
            "2024-02-29T00:00:00+09:00",
            "2023-02-29T00:00:00+09:00",
            "2026-11-29T06:30:00,09:00",
        )
    ),
]


@pytest.mark.parametrize("document", EDGES)
def test_the_relays_validator_agrees_with_the_xsd_on_edge_cases(schema, document) -> None:
    """Found by the Hypothesis test below (empty language, 24:00:00) and kept here."""
    agree(schema, document.encode())


@settings(max_examples=int(os.environ.get("RELAY_CAP_EXAMPLES", "100")), deadline=None)
@given(document=mutated())
def test_hypothesis_the_relays_validator_agrees_with_the_xsd(schema, document) -> None:
    agree(schema, document)


def _with_times(document: str, **times: str) -> bytes:
    """FOREIGN with <effective>/<onset>/<expires> in its Japanese info (schema order)."""
    stamps = "".join(f"<{tag}>{value}</{tag}>" for tag, value in times.items())
    ja = "<certainty>Likely</certainty>\n    <area>"
    assert ja in document
    return document.replace(ja, f"<certainty>Likely</certainty>{stamps}\n    <area>").encode()


def test_an_expired_document_is_refused_saying_when(api, db_url, xsd) -> None:
    before = row_counts(db_url)
    expired = _with_times(FOREIGN, expires="2026-11-29T07:30:00+09:00")
    assert_valid(xsd, expired)
    response = import_cap(api, expired)
    assert response.status_code == 422, response.text
    assert "expired at 2026-11-29 07:30:00 (Asia/Tokyo)" in response.json()["error"]
    assert row_counts(db_url) == before


def test_document_times_are_kept_and_every_export_says_when_it_expires(api, db_url, xsd) -> None:
    later = datetime.now(UTC) + timedelta(hours=3)
    stamp = later.astimezone(TOKYO).replace(microsecond=0).isoformat()
    document = _with_times(
        FOREIGN, effective="2026-11-29T06:30:00+09:00", onset="2026-11-29T06:40:00+09:00",
        expires=stamp,
    )  # fmt: skip
    response = import_cap(api, document)
    assert response.status_code == 201, response.text
    imported = assert_valid(xsd, export(api, response.json()["id"]))
    for info in imported.findall("c:info", C):
        assert text(info, "c:onset") == "2026-11-29T06:40:00+09:00"
        assert text(info, "c:expires") == stamp
    # The relay's own alert expires at its acknowledgement deadline, in +09:00.
    own = issue(api, EARTHQUAKE)
    with transaction(db_url) as session:
        alert = session.get(Alert, own)
        deadline = alert.ack_deadline.astimezone(TOKYO).replace(microsecond=0).isoformat()
    root = assert_valid(xsd, export(api, own))
    assert {text(i, "c:expires") for i in root.findall("c:info", C)} == {deadline}


# --- relayed as issued: a document no template fits (issue 18) -----------------------------

SURGE = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>ID</identifier>
  <sender>kikikanri@city.yokohama.example.jp</sender>
  <sent>2026-12-07T09:00:00+09:00</sent>
  <status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info>
    <language>en-US</language><category>Met</category><event>Storm surge warning</event>
    <responseType>Avoid</responseType>
    <urgency>Expected</urgency><severity>Severe</severity><certainty>Likely</certainty>
    <senderName>City of Yokohama</senderName>
    <headline>Storm surge warning for Yokohama</headline>
    <description>A storm surge is expected on the Tokyo Bay coast this evening.</description>
    <instruction>Stay away from the shore and river mouths.</instruction>
    AREA
  </info>
  <info>
    <language>ja-JP</language><category>Met</category><event>高潮警報</event>
    <responseType>Avoid</responseType>
    <urgency>Expected</urgency><severity>Severe</severity><certainty>Likely</certainty>
    <senderName>横浜市危機管理室</senderName>
    <headline>横浜市に高潮警報</headline>
    <description>東京湾沿岸で夕方から高潮のおそれがあります。</description>
    <instruction>海岸や河口に近づかないでください。</instruction>
    AREA
  </info>
</alert>"""
YOKOHAMA = (
    "<area><areaDesc>横浜市</areaDesc>"
    "<geocode><valueName>JIS X 0402</valueName><value>141003</value></geocode></area>"
)
# MeteoAlarm-style: English only, British English, a circle (lat,lon radius-km) round the coast.
COASTAL_GB = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>2.49.0.1.392.0.20261207.0001</identifier>
  <sender>alerts@example.org</sender>
  <sent>2026-12-07T09:00:00+09:00</sent>
  <status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info>
    <language>en-GB</language><category>Met</category><event>Coastal event</event>
    <urgency>Immediate</urgency><severity>Moderate</severity><certainty>Observed</certainty>
    <headline>Yellow coastal warning: high waves</headline>
    <area><areaDesc>Kanazawa coast</areaDesc><circle>35.3374,139.6246 8</circle></area>
  </info>
</alert>"""


def surge(identifier: str = "JP-YOKOHAMA-2026-0107", area: str = YOKOHAMA) -> bytes:
    return (
        SURGE.replace("<identifier>ID<", f"<identifier>{identifier}<")
        .replace("AREA", area)
        .encode()
    )


def test_a_document_no_template_fits_is_relayed_in_its_own_words(api, db_url, xsd) -> None:
    response = import_cap(api, surge(), channels="sms,email")
    assert response.status_code == 201, response.text
    alert_id = response.json()["id"]
    with transaction(db_url) as session:
        alert = session.get(Alert, alert_id)
        assert alert.template == "cap-relay"
        # the Japanese info first, its own codes and event, the English info as the English
        assert (alert.headline, alert.description, alert.instruction) == (
            "横浜市に高潮警報", "東京湾沿岸で夕方から高潮のおそれがあります。",
            "海岸や河口に近づかないでください。",
        )  # fmt: skip
        codes = (
            alert.category, alert.event, alert.urgency, alert.severity, alert.certainty,
            alert.response_type,
        )  # fmt: skip
        assert codes == ("Met", "高潮警報", "Expected", "Severe", "Likely", "Avoid")
        assert alert.variables["source"] == "横浜市危機管理室"
        assert alert.variables["headline_en"] == "Storm surge warning for Yokohama"
        sent = session.execute(
            select(Delivery.channel, Delivery.language, Delivery.body)
            .where(Delivery.alert_id == alert_id)
        ).all()  # fmt: skip
    sms = [body for channel, lang, body in sent if channel == "sms" and lang == "ja"]
    assert sms and all("横浜市危機管理室" in b and "横浜市に高潮警報" in b for b in sms)
    emails = [body for channel, lang, body in sent if channel == "email" and lang == "ja"]
    assert emails and all("海岸や河口に近づかないでください。" in b for b in emails)
    root = assert_valid(xsd, export(api, alert_id))
    english = next(i for i in root.findall("c:info", C) if text(i, "c:language") == "en-US")
    assert text(english, "c:headline") == "Storm surge warning for Yokohama"
    assert text(english, "c:instruction") == "Stay away from the shore and river mouths."
    assert (text(english, "c:event"), text(english, "c:severity")) == ("高潮警報", "Severe")


def test_an_english_only_document_is_relayed_from_its_en_gb_info(api, db_url) -> None:
    response = import_cap(api, COASTAL_GB.encode())
    assert response.status_code == 201, response.text
    with transaction(db_url) as session:
        alert = session.get(Alert, response.json()["id"])
        assert alert.headline == "Yellow coastal warning: high waves"
        assert alert.variables["source"] == "alerts@example.org"  # no senderName: the sender
        assert (alert.event, alert.urgency, alert.certainty) == (
            "Coastal event", "Immediate", "Observed",
        )  # fmt: skip


ELSEWHERE = [
    ("<area><areaDesc>大阪市</areaDesc></area>", "大阪市"),
    ("<area><areaDesc>神奈川県西部</areaDesc></area>", "神奈川県西部"),
    (
        "<area><areaDesc>Osaka</areaDesc>"
        "<geocode><valueName>JISX0402</valueName><value>271004</value></geocode></area>",
        "Osaka",
    ),
    (  # US ZIP 14108 (Newfane, NY) is not JIS X 0402 14108 (金沢区)
        "<area><areaDesc>Newfane</areaDesc>"
        "<geocode><valueName>ZIP</valueName><value>14108</value></geocode></area>",
        "Newfane",
    ),
    (  # NWS-style: SAME and UGC codes and a polygon in Kansas
        "<area><areaDesc>Sedgwick, KS</areaDesc>"
        "<polygon>37.47,-97.81 37.47,-97.15 37.91,-97.15 37.91,-97.81 37.47,-97.81</polygon>"
        "<geocode><valueName>SAME</valueName><value>020173</value></geocode>"
        "<geocode><valueName>UGC</valueName><value>KSC173</value></geocode></area>",
        "Sedgwick, KS",
    ),
    (
        "<area><areaDesc>大阪湾</areaDesc>"
        "<polygon>34.4,135.1 34.4,135.5 34.7,135.5 34.7,135.1 34.4,135.1</polygon></area>",
        "大阪湾",
    ),
    ("<area><areaDesc>沖合</areaDesc><circle>34.0,139.0 20</circle></area>", "沖合"),
]


def test_a_document_for_somewhere_else_is_refused_naming_its_areas(api, db_url) -> None:
    before = row_counts(db_url)
    for number, (area, name) in enumerate(ELSEWHERE):
        response = import_cap(api, surge(f"ELSEWHERE-{number}", area))
        assert response.status_code == 422, (area, response.text)
        error = response.json()["error"]
        assert f"areas ({name})" in error and "do not include 金沢区" in error, error
    response = import_cap(api, surge("NO-AREA", ""))
    assert response.status_code == 422, response.text
    assert "names no <area>" in response.json()["error"]
    assert row_counts(db_url) == before


AROUND_THE_WARD = [
    "<area><areaDesc>区内</areaDesc>"
    "<geocode><valueName>JMA</valueName><value>1410800</value></geocode></area>",
    "<area><areaDesc>Kanazawa Ward, Yokohama</areaDesc></area>",
    "<area><areaDesc>三浦半島北部</areaDesc>"
    "<polygon>35.30,139.58 35.30,139.67 35.37,139.67 35.37,139.58 35.30,139.58</polygon></area>",
    "<area><areaDesc>平潟湾周辺</areaDesc><circle>35.34,139.63 3</circle></area>",
    # one area of several is enough: the document concerns the ward among others
    "<area><areaDesc>大阪市</areaDesc></area><area><areaDesc>神奈川県東部</areaDesc></area>",
]


def test_a_document_whose_area_covers_the_ward_is_relayed(api, db_url) -> None:
    ids = []
    for number, area in enumerate(AROUND_THE_WARD):
        response = import_cap(api, surge(f"AROUND-{number}", area))
        assert response.status_code == 201, (area, response.text)
        ids.append(response.json()["id"])
    with transaction(db_url) as session:
        templates = [session.get(Alert, i).template for i in ids]
    assert templates == ["cap-relay"] * len(AROUND_THE_WARD)


def test_a_long_bulletin_is_clipped_with_an_ellipsis_not_refused(api, db_url) -> None:
    long = "東京湾沿岸で高潮のおそれがあります。" * 90  # 1,620 characters
    document = surge().replace(
        "東京湾沿岸で夕方から高潮のおそれがあります。".encode(), long.encode()
    )
    response = import_cap(api, document)
    assert response.status_code == 201, response.text
    with transaction(db_url) as session:
        alert = session.get(Alert, response.json()["id"])
    assert len(alert.description) == 1000 and alert.description.endswith("…")
    assert long.startswith(alert.description[:-1])


def test_a_relayed_alert_exports_and_imports_as_the_same_alert(api, db_url, xsd) -> None:
    first = import_cap(api, surge())
    assert first.status_code == 201, first.text
    document = assert_valid(xsd, export(api, first.json()["id"]))
    again = import_cap(api, etree.tostring(document, xml_declaration=True, encoding="utf-8"))
    assert again.status_code == 201, again.text
    with transaction(db_url) as session:
        a, b = session.get(Alert, first.json()["id"]), session.get(Alert, again.json()["id"])
        assert {f: getattr(b, f) for f in ROUND_TRIP_FIELDS} == {
            f: getattr(a, f) for f in ROUND_TRIP_FIELDS
        }
        assert b.source_identifier == a.identifier  # the relay's own, recognised as such


def test_the_relay_re_issues_its_own_alert_after_its_deadline(api, db_url, xsd) -> None:
    """An export's <expires> is the original's acknowledgement deadline: re-issuing the alert
    later is what an operator posting it means. A forwarded document's own expiry still holds."""
    own = issue(api, EARTHQUAKE)
    with transaction(db_url) as session:
        session.get(Alert, own).ack_deadline = datetime.now(UTC) - timedelta(hours=1)
    document = assert_valid(xsd, export(api, own))
    expires = datetime.fromisoformat(text(document.find("c:info", C), "c:expires"))
    assert expires < datetime.now(UTC)
    response = import_cap(api, etree.tostring(document))
    assert response.status_code == 201, response.text
    with transaction(db_url) as session:
        new = session.get(Alert, response.json()["id"])
        assert new.expires_at is None and new.ack_deadline > datetime.now(UTC)
        audit = session.scalars(
            select(AuditEvent).where(AuditEvent.target == f"alert {new.id}",
                                     AuditEvent.action == "alert.import_cap")
        ).one()  # fmt: skip
        assert f"a re-issue of alert {own}" in audit.summary
    # an imported document whose own expiry has passed is not re-issued through its export
    later = (datetime.now(UTC) + timedelta(hours=3)).astimezone(TOKYO).replace(microsecond=0)
    forwarded = import_cap(api, _with_times(FOREIGN, expires=later.isoformat()))
    assert forwarded.status_code == 201, forwarded.text
    with transaction(db_url) as session:
        session.get(Alert, forwarded.json()["id"]).expires_at = datetime.now(UTC) - timedelta(
            minutes=1
        )
    before = row_counts(db_url)
    refused = import_cap(api, export(api, forwarded.json()["id"]))
    assert refused.status_code == 422 and "expired at" in refused.json()["error"], refused.text
    assert row_counts(db_url) == before


def test_a_cancelled_alert_nobody_received_exports_as_a_cancel(api, db_url, xsd) -> None:
    alert_id = issue(api, EARTHQUAKE)  # no worker here: nothing was sent when it is cancelled
    cancelled = api.client.post(f"/api/v1/alerts/{alert_id}/cancel", headers=api.auth("operator"))
    assert cancelled.status_code == 200 and cancelled.json()["notice"] is None, cancelled.text
    document = export(api, alert_id)
    root = assert_valid(xsd, document)
    with transaction(db_url) as session:
        alert = session.get(Alert, alert_id)
        triple = f"relay@kanazawa.example.jp,{alert.identifier},{cap_sent(alert)}"
        closed = alert.closed_at.astimezone(TOKYO).replace(microsecond=0).isoformat()
    assert text(root, "c:msgType") == "Cancel"
    assert text(root, "c:references") == triple
    assert text(root, "c:sent") == closed
    assert text(root, "c:identifier") != alert.identifier
    assert export(api, alert_id) == document  # the same Cancel every time it is fetched
    assert "震度" in text(root.find("c:info", C), "c:headline")  # what is cancelled
