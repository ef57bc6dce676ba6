"""The carrier simulator's pure parts: segments, the log's queries, behaviours, links, TwiML,
and the compiled OpenAPI validation checked against openapi-core's own validator."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from multidict import MultiDict

from simulator import Behaviour, FaultRates, LogRecord, Population, SimLog
from simulator.links import default_link_base, find_link
from simulator.segments import count_segments
from simulator.spec import FORM, default_spec_path, load_spec
from simulator.twiml import TwimlError, parse_twiml

SPEC = default_spec_path()
needs_spec = pytest.mark.skipif(
    not SPEC.is_file(),
    reason=f"Twilio OpenAPI spec not found at {SPEC} (set TWILIO_OPENAPI_SPEC to its path)",
)


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # escaped characters take two septets each
        ("€" * 81, 2),
        ("あ" * 70, 1),
        ("あ" * 71, 2),
        ("あ" * 100, 2),
        ("あ" * 134, 2),
        ("あ" * 135, 3),
        ("a" * 69 + "あ", 1),  # one non-GSM character makes the whole body UCS-2
        ("a" * 70 + "あ", 2),
        ("🙂" * 35, 1),  # outside the BMP: two UTF-16 units each
        ("🙂" * 36, 2),
    ],
)
def test_segments(body: str, segments: int) -> None:
    assert count_segments(body) == segments


def _record(kind: str, mono: float, segments: int = 1, status: int = 201) -> LogRecord:
    return LogRecord(kind=kind, mono=mono, segments=segments, status=status)  # type: ignore[arg-type]


def test_window_max_slides_over_half_open_windows() -> None:
    log = SimLog(
        [
            _record("sms", 10.0, 2),
            _record("sms", 10.5, 2),
            _record("sms", 10.99, 1),
            _record("sms", 11.0, 3),
            _record("sms", 11.2, 1, status=429),
            _record("call", 10.2, 9),
        ]
    )
    # The window (10.2, 11.2] holds 10.5, 10.99, 11.0 and 11.2; 10.0 is a full second earlier.
    assert log.window_max("sms", 1.0) == 2 + 1 + 3 + 1
    assert log.window_max("sms", 1.0, accepted_only=True) == 2 + 1 + 3
    assert log.window_max("sms", 1.0, weight="count") == 4
    assert log.window_max("sms", 0.1) == 1 + 3  # 10.99 and 11.0
    assert log.window_max("sms", 0.5) == 1 + 3 + 1  # 10.5 is exactly 0.5 s before 11.0: out
    assert log.window_max("call") == 9
    assert SimLog().window_max("sms") == 0


def test_log_queries() -> None:
    log = SimLog(
        [
            LogRecord(kind="sms", to="+819011112222", sid="SM1"),
            LogRecord(kind="status_callback", to="+819011112222", sid="SM1"),
            LogRecord(kind="email", to="Leader@Example.jp"),
        ]
    )
    assert [r.kind for r in log.requests_to("+819011112222")] == ["sms"]
    assert [r.kind for r in log.requests_to("leader@example.jp")] == ["email"]
    assert log.count_by_kind() == {"sms": 1, "status_callback": 1, "email": 1}
    assert [r.kind for r in log.callbacks_for("SM1")] == ["status_callback"]
    assert log[0].to_dict()["sid"] == "SM1"


def test_population_round_trips_through_json(tmp_path: Path) -> None:
    population = Population(
        behaviours={
            "+819011112222": Behaviour(sms_reply="１", digits="9 1"),
            "Leader@Example.JP": Behaviour(email_outcome="reject"),
        },
        default=Behaviour(sms_delivery_delay=5),
        seed=42,
        speed=30,
        faults=FaultRates(http_429=0.1),
    )
    path = tmp_path / "population.json"
    population.dump(path)
    loaded = Population.load(path)
    assert loaded == population
    assert loaded.behaviour_for("leader@example.jp").email_outcome == "reject"
    assert loaded.behaviour_for("+819999999999") == Behaviour(sms_delivery_delay=5)
    assert "１" in path.read_text(encoding="utf-8")  # kept readable, not \\uff11


def test_behaviour_rejects_unknown_fields_and_values() -> None:
    with pytest.raises(ValueError, match="mood"):
        Behaviour.from_dict({"mood": "grumpy"})
    with pytest.raises(ValueError, match="call_outcome"):
        Behaviour.from_dict({"call_outcome": "voicemail"})


def test_draws_depend_on_seed_and_key_only() -> None:
    one, same, other = Population(seed=1), Population(seed=1), Population(seed=2)
    assert one.draw("api", "+81", 3) == same.draw("api", "+81", 3)
    assert one.draw("api", "+81", 3) != one.draw("api", "+81", 4)
    assert one.draw("api", "+81", 3) != other.draw("api", "+81", 3)


def test_find_link() -> None:
    base = default_link_base("http://127.0.0.1:8000/webhooks/twilio/sms")
    assert base == "http://127.0.0.1:8000/a/"
    text = (
        "【訓練】詳細 https://example.jp/info 回答http://127.0.0.1:8000/a/K7QF.x-y_zです。"
        "予備 http://127.0.0.1:8000/a/second"
    )
    assert find_link(text, base) == "http://127.0.0.1:8000/a/K7QF.x-y_z"
    assert find_link("回答(http://127.0.0.1:8000/a/TOK).", base) == "http://127.0.0.1:8000/a/TOK"
    assert find_link("no link here", base) is None


def test_parse_twiml() -> None:
    verbs = parse_twiml(
        '<?xml version="1.0" encoding="UTF-8"?><Response><Say language="ja-JP">こんにちは</Say>'
        '<Gather action="/g" numDigits="1"><Say>1を押して</Say></Gather>'
        '<Redirect method="POST">/next</Redirect><Hangup/></Response>'
    )
    assert [v.name for v in verbs] == ["Say", "Gather", "Redirect", "Hangup"]
    assert verbs[0].text == "こんにちは" and verbs[0].attr("language") == "ja-JP"
    assert verbs[1].attr("action") == "/g" and verbs[1].children[0].text == "1を押して"
    assert verbs[2].text == "/next"
    with pytest.raises(TwimlError):
        parse_twiml("<Other/>")
    with pytest.raises(TwimlError):
        parse_twiml("<Response><Say>")
    with pytest.raises(TwimlError, match="DTD"):
        parse_twiml('<!DOCTYPE r [<!ENTITY a "aaaa">]><Response>&a;</Response>')


ACCOUNT = "AC" + "c3" * 16
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{ACCOUNT}:t".encode()).decode()}
MESSAGES = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
CALLS = "/2010-04-01/Accounts/{AccountSid}/Calls.json"
GOOD_SMS = [("To", "+819011112222"), ("From", "+815011112222"), ("Body", "訓練")]
GOOD_CALL = [("To", "+819011112222"), ("From", "+815011112222"), ("Url", "https://r.example/v")]
CASES = [
    (MESSAGES, GOOD_SMS, AUTH, ACCOUNT, True),
    (MESSAGES, [*GOOD_SMS, ("StatusCallback", "https://r.example/s")], AUTH, ACCOUNT, True),
    (MESSAGES, GOOD_SMS[1:], AUTH, ACCOUNT, False),  # no To
    (MESSAGES, [*GOOD_SMS, ("ValidityPeriod", "soon")], AUTH, ACCOUNT, False),
    (MESSAGES, [*GOOD_SMS, ("ValidityPeriod", "600")], AUTH, ACCOUNT, True),
    (MESSAGES, [*GOOD_SMS, ("SmartEncoded", "perhaps")], AUTH, ACCOUNT, False),
    (MESSAGES, [*GOOD_SMS, ("SmartEncoded", "true")], AUTH, ACCOUNT, True),
    (MESSAGES, [*GOOD_SMS, ("ContentRetention", "forever")], AUTH, ACCOUNT, False),
    (
        MESSAGES,
        [*GOOD_SMS, ("MediaUrl", "https://a"), ("MediaUrl", "https://b")],
        AUTH,
        ACCOUNT,
        True,
    ),
    (MESSAGES, GOOD_SMS, {}, ACCOUNT, False),  # no credentials
    (MESSAGES, GOOD_SMS, AUTH, "AC123", False),  # malformed account SID in the path
    (CALLS, GOOD_CALL, AUTH, ACCOUNT, True),
    (CALLS, GOOD_CALL[1:], AUTH, ACCOUNT, False),  # no To
    (CALLS, GOOD_CALL[:1] + GOOD_CALL[2:], AUTH, ACCOUNT, False),  # no From
    (
        CALLS,
        [*GOOD_CALL, *(("StatusCallbackEvent", e) for e in ("initiated", "ringing", "answered"))],
        AUTH,
        ACCOUNT,
        True,
    ),
    (CALLS, [*GOOD_CALL, ("Timeout", "long")], AUTH, ACCOUNT, False),
    (CALLS, [*GOOD_CALL, ("MachineDetection", "Enable"), ("Record", "false")], AUTH, ACCOUNT, True),
]


@needs_spec
@pytest.mark.parametrize(("template", "pairs", "headers", "account", "valid"), CASES)
def test_compiled_validation_agrees_with_openapi_core(
    template: str, pairs: list[tuple[str, str]], headers: dict[str, str], account: str, valid: bool
) -> None:
    spec = load_spec(SPEC)
    assert spec is not None
    raw = urlencode(pairs).encode()
    form = MultiDict(parse_qsl(raw.decode(), keep_blank_values=True))
    fast = spec.validate("POST", template, {"AccountSid": account}, headers, FORM, form)
    path = template.replace("{AccountSid}", account)
    full = spec.validate_full("POST", path, [], headers, FORM, raw)
    assert (fast == [], full == []) == (valid, valid), (fast, full)


@needs_spec
def test_fetch_validates_the_sid_pattern() -> None:
    spec = load_spec(SPEC)
    assert spec is not None
    template = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"
    good = {"AccountSid": ACCOUNT, "Sid": "SM" + "0" * 32}
    assert spec.validate("GET", template, good, AUTH, "", MultiDict()) == []
    bad = {"AccountSid": ACCOUNT, "Sid": "XX1"}
    assert spec.validate("GET", template, bad, AUTH, "", MultiDict()) != []


def test_missing_spec_file_means_no_schema_validation(tmp_path: Path) -> None:
    assert load_spec(tmp_path / "absent.json") is None
