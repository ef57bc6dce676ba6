"""API bad input and trust (issue 9): every state-changing endpoint refuses a missing or forged
token (401), a role that may not act (403), an oversized body (413, declared or streamed) and a
malformed JSON body (422) — with a JSON message and the database unchanged.

The endpoints are enumerated from the app's OpenAPI description, so a new one is covered as
soon as it exists: the test fails until it has a valid request and its roles below.
(tests/test_api.py checks the single cases in context: issue, ack, cancel and their audit.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from relay.alerts.drafts import DraftFields, create_draft
from relay.db import transaction
from relay.models import InboundMessage
from relay.web import api as api_module
from relay.web import drafts_api
from tests.api_client import ApiClient, api_client, row_counts
from tests.conftest import SAMPLE_CSV

STATE_CHANGING = {"post", "put", "patch", "delete"}
CAP = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>JP-TEST-1</identifier><sender>bousai@example.jp</sender>
  <sent>2026-11-29T06:30:00+09:00</sent><status>Exercise</status><msgType>Alert</msgType>
  <scope>Restricted</scope>
  <info><language>ja-JP</language><category>Geo</category><event>津波</event>
    <urgency>Immediate</urgency><severity>Extreme</severity><certainty>Likely</certainty>
    <area><areaDesc>金沢区沿岸部</areaDesc></area></info>
</alert>"""


@dataclass
class Call:
    """A request that would succeed for the right role: only the token or body is wrong."""

    roles: frozenset[str]  # roles that may make it
    json: object = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


OPERATORS = frozenset({"operator", "admin"})
COORDINATORS = frozenset({"coordinator", "admin"})
ADMINS = frozenset({"admin"})
CALLS = {
    ("post", "/api/v1/alerts"): Call(
        OPERATORS,
        json={
            "template": "earthquake",
            "variables": {"intensity": "5強", "area": "金沢区全域"},
            "audience": "kind:hospital",
            "channels": ["email"],
            "questions": "damage-report",
        },
    ),
    ("post", "/api/v1/alerts/{alert_id}/answers"): Call(
        OPERATORS, json={"org": "hospital-1", "answers": {"injured": 1}}
    ),
    ("post", "/api/v1/alerts/cap"): Call(
        OPERATORS,
        content=CAP.encode(),
        headers={"Content-Type": "application/cap+xml"},
        params={"audience": "kind:hospital", "channels": "email"},
    ),
    ("post", "/api/v1/alerts/{alert_id}/update"): Call(
        OPERATORS,
        json={"template": "earthquake", "variables": {"intensity": "6弱", "area": "金沢区全域"}},
    ),
    ("post", "/api/v1/alerts/{alert_id}/cancel"): Call(OPERATORS),
    ("post", "/api/v1/alerts/{alert_id}/recipients/{recipient_id}/ack"): Call(
        OPERATORS, json={"note": "電話で確認"}
    ),
    ("post", "/api/v1/drills"): Call(COORDINATORS, json={"name": "q2", "cron": "0 10 * * 1"}),
    ("post", "/api/v1/drills/{name}/run"): Call(COORDINATORS),
    ("post", "/api/v1/directory/import"): Call(
        ADMINS, content=SAMPLE_CSV.read_bytes(), headers={"Content-Type": "text/csv"}
    ),
    ("post", "/api/v1/reports/{report_id}/handled"): Call(OPERATORS),
    ("post", "/api/v1/users"): Call(ADMINS, json={"name": "mallory", "role": "admin"}),
    ("post", "/api/v1/drafts/{draft_id}/issue"): Call(OPERATORS),
    ("post", "/api/v1/drafts/{draft_id}/discard"): Call(OPERATORS),
}


@pytest.fixture
def api(db_url: str) -> Iterator[tuple[ApiClient, dict[str, str]]]:
    """A directory, one alert with recipients, a drill schedule and an inbound report: every
    path names a real object, so a missing check would change something."""
    with api_client(db_url) as client:
        operator = client.auth("operator")
        alert = client.client.post(
            "/api/v1/alerts", json=CALLS[("post", "/api/v1/alerts")].json, headers=operator
        )
        assert alert.status_code == 201, alert.text
        alert_id = alert.json()["id"]
        people = client.client.get(f"/api/v1/alerts/{alert_id}/recipients", headers=operator).json()
        drill = client.client.post(
            "/api/v1/drills",
            json={"name": "monthly", "cron": "0 10 1 * *"},
            headers=client.auth("coordinator"),
        )
        assert drill.status_code == 201, drill.text
        with transaction(db_url) as session:
            report = InboundMessage(
                provider_sid="SM-bad-input-1", channel="sms", from_address="+819012345678",
                body="道路が冠水しています", interpretation="report",
            )  # fmt: skip
            session.add(report)
            session.flush()
            report_id = report.id
            # A prepared alert, as a JMA bulletin's draft rule writes one.
            draft = create_draft(
                session,
                DraftFields(template="tsunami", audience="kind:hospital", channels=("email",),
                            variables={"area": "金沢区沿岸部"}),
                rule="test", summary="津波注意報",
            )  # fmt: skip
            draft_id = draft.id
        values = {
            "alert_id": str(alert_id),
            "recipient_id": str(people[0]["id"]),
            "name": "monthly",
            "report_id": str(report_id),
            "draft_id": str(draft_id),
        }
        yield client, values


def state_changing_routes(client: ApiClient) -> set[tuple[str, str]]:
    paths = client.app.openapi()["paths"]
    found = {
        (method, path)
        for path, operations in paths.items()
        if path.startswith("/api/")
        for method in operations
        if method in STATE_CHANGING
    }
    # ...and nothing under /api/ hides from the OpenAPI description
    declared = {
        (method.lower(), route.path)
        for router in (api_module.router, drafts_api.router)
        for route in router.routes
        for method in getattr(route, "methods", ())
        if method.lower() in STATE_CHANGING
    }
    assert declared <= found, declared - found
    return found


def send(client: ApiClient, values: dict[str, str], key: tuple[str, str], **override):
    method, template = key
    call = CALLS[key]
    kwargs = {
        "params": call.params,
        "headers": {**call.headers, **override.pop("headers", {})},
        **({"json": call.json} if call.json is not None else {}),
        **({"content": call.content} if call.content is not None else {}),
        **override,
    }
    return client.client.request(method.upper(), template.format(**values), **kwargs)


def assert_json_error(response, status: int, contains: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert contains in response.json()["error"], response.text


def test_every_state_changing_endpoint_is_covered(api) -> None:
    client, _ = api
    missing = state_changing_routes(client) - set(CALLS)
    assert not missing, (
        f"new state-changing endpoint(s) {missing}: add a request and roles to CALLS"
    )


def test_no_token_or_a_forged_one_is_401_everywhere(api, db_url) -> None:
    client, values = api
    before = row_counts(db_url)
    for key in sorted(state_changing_routes(client)):
        missing = send(client, values, key)
        assert_json_error(missing, 401, "missing bearer token")
        assert missing.headers["www-authenticate"] == "Bearer"
        for header in ("Bearer rly_forged-token", "Basic b3BlcmF0b3I6cGFzcw==", "Bearer "):
            assert send(client, values, key, headers={"Authorization": header}).status_code == 401
    assert row_counts(db_url) == before


def test_a_role_that_may_not_act_is_403_everywhere(api, db_url) -> None:
    client, values = api
    before = row_counts(db_url)
    for key in sorted(state_changing_routes(client)):
        refused = {"viewer", "operator", "coordinator", "admin"} - CALLS[key].roles
        assert "viewer" in refused  # a viewer reads, never changes anything
        for role in sorted(refused):
            response = send(client, values, key, headers=client.auth(role))
            assert_json_error(response, 403, f"role {role} may not")
    assert row_counts(db_url) == before


def test_oversized_bodies_are_413_declared_or_streamed(api, db_url) -> None:
    client, values = api
    before = row_counts(db_url)
    huge = b"x" * (api_module.MAX_BODY + 1)
    for key in sorted(state_changing_routes(client)):
        admin = client.auth("admin")
        declared = send(client, values, key, headers=admin, content=huge, json=None)
        assert_json_error(declared, 413, "too large")
        if CALLS[key].json is None and CALLS[key].content is None:
            continue  # reads no body, so a streamed one is never buffered
        chunks = iter([huge[: len(huge) // 2], huge[len(huge) // 2 :]])  # no Content-Length
        streamed = send(client, values, key, headers=admin, content=chunks, json=None)
        assert_json_error(streamed, 413, "too large")
    assert row_counts(db_url) == before


MALFORMED = [
    b'{"template": "earthquake",',
    b"\xff\xfe{}",
    b"[1, 2]",
    b"null",
    b"",
    b'"text"',
    b"\x80{}",
]


def test_malformed_json_is_422_with_the_reason(api, db_url) -> None:
    client, values = api
    before = row_counts(db_url)
    json_routes = [
        key for key in sorted(state_changing_routes(client)) if CALLS[key].json is not None
    ]
    assert len(json_routes) >= 5
    for key in json_routes:
        for body in MALFORMED:
            response = send(
                client, values, key, json=None, content=body,
                headers={**client.auth("admin"), "Content-Type": "application/json"},
            )  # fmt: skip
            if body.startswith(b"\x80"):  # not UTF-8 (nor UTF-16 with a BOM): not even text
                assert_json_error(response, 400, "parsing the body")
                continue
            assert_json_error(response, 422, "invalid request")
            assert response.json()["details"], response.text  # which field, and why
    assert row_counts(db_url) == before


def test_a_single_valued_query_parameter_given_twice_is_422(api, db_url) -> None:
    client, _ = api
    before = row_counts(db_url)
    viewer = client.auth("viewer")
    twice = client.client.get("/api/v1/directory?district=西柴&district=釜利谷", headers=viewer)
    assert_json_error(twice, 422, "district: give one value")
    assert client.client.get("/api/v1/directory?district=西柴", headers=viewer).status_code == 200
    cap = CALLS[("post", "/api/v1/alerts/cap")]
    ambiguous = client.client.post(
        "/api/v1/alerts/cap?audience=kind:hospital&audience=all&channels=sms&channels=email",
        content=cap.content,
        headers={**cap.headers, **client.auth("operator")},
    )
    assert_json_error(ambiguous, 422, "audience: give one value")  # channels may repeat
    assert row_counts(db_url) == before


def test_an_unknown_or_misspelt_field_is_422_naming_it(api, db_url) -> None:
    # A misspelt `ack_witin` must never become the default 15 minutes: the operator gets
    # exactly the alert they wrote, or a refusal that says which field was not understood.
    client, values = api
    before = row_counts(db_url)
    json_routes = [
        key for key in sorted(state_changing_routes(client)) if isinstance(CALLS[key].json, dict)
    ]
    assert len(json_routes) >= 5
    admin = client.auth("admin")
    for key in json_routes:
        body = {**CALLS[key].json, "ack_witin": "60m", "vars": {"area": "金沢区"}}
        response = send(client, values, key, json=body, headers=admin)
        assert_json_error(response, 422, "unknown field ack_witin, vars")
        fields = {d["field"] for d in response.json()["details"]}
        assert fields == {"body.ack_witin", "body.vars"}, (key, response.text)
    cap = CALLS[("post", "/api/v1/alerts/cap")]
    misspelt = client.client.post(
        "/api/v1/alerts/cap",
        params={**cap.params, "ack_witin": "60m"},
        content=cap.content,
        headers={**cap.headers, **client.auth("operator")},
    )
    assert_json_error(misspelt, 422, "unknown query parameter ack_witin")
    assert row_counts(db_url) == before


@pytest.mark.parametrize("duration", ["99999999999999999999d", "99999999999999999999", "367d"])
def test_an_impossible_duration_is_422_not_a_crash(api, db_url, duration: str) -> None:
    # 10^20 days overflowed Python's timedelta (a 500); a year and a day is refused as well.
    client, _ = api
    before = row_counts(db_url)
    operator, coordinator = client.auth("operator"), client.auth("coordinator")
    issue = {**CALLS[("post", "/api/v1/alerts")].json, "ack_within": duration}
    response = client.client.post("/api/v1/alerts", json=issue, headers=operator)
    assert_json_error(response, 422, "duration")
    cap = CALLS[("post", "/api/v1/alerts/cap")]
    response = client.client.post(
        "/api/v1/alerts/cap",
        params={**cap.params, "ack_within": duration},
        content=cap.content,
        headers={**cap.headers, **operator},
    )
    assert_json_error(response, 422, "duration")
    drill = {"name": "long", "cron": "0 10 * * 1", "ack_within": duration}
    response = client.client.post("/api/v1/drills", json=drill, headers=coordinator)
    assert response.status_code == 422, response.text
    assert row_counts(db_url) == before


def test_a_manual_ack_takes_only_the_alerts_own_answers(api, db_url) -> None:
    client, values = api
    before = row_counts(db_url)
    path = "/api/v1/alerts/{alert_id}/recipients/{recipient_id}/ack".format(**values)
    operator = client.auth("operator")
    made_up = client.client.post(
        path, json={"note": "電話で確認", "answer": "<b>all-fine</b>"}, headers=operator
    )
    assert_json_error(made_up, 422, "not one of this alert's answers: ack, need_support, damage")
    assert row_counts(db_url) == before
    damage = client.client.post(
        path, json={"note": "電話で確認: 塀が倒れた", "answer": "damage"}, headers=operator
    )
    assert damage.status_code == 200, damage.text
    people = client.client.get(f"/api/v1/alerts/{values['alert_id']}/recipients", headers=operator)
    (acked,) = [p for p in people.json() if str(p["id"]) == values["recipient_id"]]
    assert acked["answer"] == "damage"
