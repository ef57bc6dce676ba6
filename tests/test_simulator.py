"""The carrier simulator over real HTTP and SMTP on loopback, driven by the official clients.

One simulator (in a background thread, time compressed) and one fake relay — an aiohttp app
that checks X-Twilio-Signature on everything it receives — serve the whole module; each test
uses its own phone numbers so tests don't see each other's traffic.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import aiosmtplib
import pytest
import requests
from aiohttp import web
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from simulator import (
    Behaviour,
    CarrierSimulator,
    FaultRates,
    Population,
    SimLog,
    SimulatorThread,
)
from simulator.log import LogRecord
from simulator.spec import default_spec_path

ACCOUNT = "AC" + "a1" * 16
TOKEN = "simulator-test-token"
RELAY_NUMBER = "+815011112222"
SMTP_USER, SMTP_PASSWORD = "relay", "mail-secret"
SPEED = 200.0  # simulated seconds per real second
SPEC = default_spec_path()
needs_spec = pytest.mark.skipif(
    not SPEC.is_file(),
    reason=f"Twilio OpenAPI spec not found at {SPEC} (set TWILIO_OPENAPI_SPEC to its path)",
)
T = TypeVar("T")
_numbers = itertools.count(1)


def new_number() -> str:
    """A fresh Japanese mobile number per use, so tests never share recipients."""
    return f"+8190{next(_numbers):08d}"


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll until predicate() is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class RewritingHttpClient(TwilioHttpClient):
    """The twilio client's own HTTP client, sending to the simulator instead of api.twilio.com.

    Rewrites scheme and host after the client has built the URL (setting `base_url` breaks
    when an edge/region is configured).
    """

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._base = urlsplit(base_url)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        url = urlunsplit((self._base.scheme, self._base.netloc, parts.path, parts.query, ""))
        return super().request(method, url, *args, **kwargs)


# --- a fake relay: receives webhooks, checks signatures, answers TwiML ---------------------


@dataclass
class Received:
    method: str
    path: str
    url: str
    params: dict[str, str]
    signed: bool  # X-Twilio-Signature present and valid for this URL and params


Handler = Callable[[Received], tuple[int, str, str]]  # -> (status, body, content type)

GATHER_TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response>'
    '<Say language="ja-JP">【訓練】金沢区役所です。震度5強の地震が発生しました。</Say>'
    '<Gather action="/voice/gather" numDigits="1" timeout="5">'
    '<Say language="ja-JP">確認した場合は1を、もう一度聞く場合は9を押してください。</Say>'
    '</Gather><Say language="ja-JP">入力がありませんでした。</Say></Response>'
)


def _twiml(received: Received) -> tuple[int, str, str]:
    if received.params.get("AnsweredBy", "human") != "human":
        return 200, "<Response><Hangup/></Response>", "text/xml"
    return 200, GATHER_TWIML, "text/xml"


def _gather(received: Received) -> tuple[int, str, str]:
    if received.params.get("Digits") == "9":
        return 200, GATHER_TWIML, "text/xml"
    return (
        200,
        '<Response><Say language="ja-JP">確認しました。</Say><Hangup/></Response>',
        "text/xml",
    )


class FakeRelay:
    """An aiohttp app in its own thread, standing in for the relay's webhooks and links."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.handlers: dict[str, Handler] = {
            "/voice/twiml": _twiml,
            "/voice/gather": _gather,
            "/webhooks/twilio/sms": lambda r: (
                200,
                "<Response><Message>受け付けました</Message></Response>",
                "text/xml",
            ),
        }
        self._validator = RequestValidator(TOKEN)
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        return [r for r in list(self.received) if r.path == path]

    def start(self) -> None:
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        params = {k: str(v) for k, v in (await request.post()).items()}
        url = self.url(request.path_qs)
        signature = request.headers.get("X-Twilio-Signature", "")
        signed = bool(signature) and self._validator.validate(url, params, signature)
        received = Received(request.method, request.path, url, params, signed)
        self.received.append(received)
        handler = self.handlers.get(request.path)
        if handler is not None:
            status, body, content_type = handler(received)
        elif request.path.startswith("/a/"):
            status, body, content_type = 200, "<html>回答ボタン</html>", "text/html"
        else:
            status, body, content_type = 204, "", "text/plain"
        return web.Response(status=status, text=body or None, content_type=content_type)


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def relay() -> Iterator[FakeRelay]:
    fake = FakeRelay()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def sim_thread(relay: FakeRelay) -> Iterator[SimulatorThread]:
    simulator = CarrierSimulator(
        account_sid=ACCOUNT,
        auth_token=TOKEN,
        sms_webhook_url=relay.url("/webhooks/twilio/sms"),
        population=Population(seed=1),
        speed=SPEED,
        smtp_username=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
        smtp_starttls=True,
    )
    with SimulatorThread(simulator) as running:
        yield running


@pytest.fixture(scope="module")
def sim(sim_thread: SimulatorThread) -> CarrierSimulator:
    return sim_thread.sim


@pytest.fixture(autouse=True)
def _sim_stays_clean(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that used the simulator ends with no violations and no internal errors."""
    yield
    if "sim" in request.fixturenames or "sim_thread" in request.fixturenames:
        simulator: CarrierSimulator = request.getfixturevalue("sim")
        assert simulator.violations == []
        assert simulator.errors == []


@pytest.fixture(scope="module")
def client(sim: CarrierSimulator) -> Client:
    return Client(ACCOUNT, TOKEN, http_client=RewritingHttpClient(sim.api_url, timeout=5))


def send_sms(client: Client, relay: FakeRelay, to: str, body: str = "【訓練】テスト") -> str:
    message = client.messages.create(
        to=to, from_=RELAY_NUMBER, body=body, status_callback=relay.url("/status/sms")
    )
    assert message.sid is not None
    return message.sid


def callbacks(relay: FakeRelay, path: str, sid_field: str, sid: str) -> list[Received]:
    return [r for r in relay.at(path) if r.params.get(sid_field) == sid]


def basic_auth(account: str = ACCOUNT, token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{account}:{token}".encode()).decode()}


# --- the REST API ----------------------------------------------------------------------------


@needs_spec
def test_message_create_is_valid_against_twilios_spec(
    sim: CarrierSimulator, client: Client
) -> None:
    assert sim.spec_loaded
    message = client.messages.create(to=new_number(), from_=RELAY_NUMBER, body="確認テスト")
    assert message.status == "queued"
    assert message.sid is not None and len(message.sid) == 34 and message.sid.startswith("SM")
    assert message.num_segments == "1"
    assert message.date_created is not None
    fetched = client.messages(message.sid).fetch()
    assert fetched.sid == message.sid and fetched.body == "確認テスト"
    assert sim.violations == []


@needs_spec
def test_request_missing_to_is_rejected_and_recorded(sim: CarrierSimulator) -> None:
    response = requests.post(
        f"{sim.api_url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
        data={"From": RELAY_NUMBER, "Body": "宛先なし"},
        headers=basic_auth(),
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["code"] == 21604
    assert len(sim.violations) == 1
    errors = " ".join(sim.violations[0].errors)
    assert "'To' is a required property" in errors  # from the OpenAPI schema
    sim.violations.clear()


@needs_spec
def test_schema_violation_not_covered_by_runtime_rules(sim: CarrierSimulator) -> None:
    response = requests.post(
        f"{sim.api_url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
        data={"To": new_number(), "From": RELAY_NUMBER, "Body": "x", "ValidityPeriod": "soon"},
        headers=basic_auth(),
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["code"] == 20001
    assert "ValidityPeriod" in sim.violations[0].errors[0]
    sim.violations.clear()


def test_runtime_rules_checked_even_without_spec(relay: FakeRelay) -> None:
    async def scenario() -> tuple[int, int, list[str]]:
        async with (
            CarrierSimulator(
                ACCOUNT, TOKEN, relay.url("/sms"), spec_path="/nonexistent/spec.json"
            ) as lone,
            aiohttp.ClientSession() as http,
        ):
            assert not lone.spec_loaded
            async with http.post(
                f"{lone.api_url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
                data={"To": "090-1234-5678", "From": RELAY_NUMBER, "Body": "x"},
                headers=basic_auth(),
            ) as response:
                body = await response.json()
                return response.status, body["code"], list(lone.violations[0].errors)

    status, code, errors = asyncio.run(scenario())
    assert (status, code) == (400, 21211)
    assert errors == ["21211 Invalid 'To' Phone Number: 090-1234-5678"]


def test_invalid_number_gets_21211(sim: CarrierSimulator, client: Client) -> None:
    number = new_number()
    sim.set_behaviour(number, Behaviour(line="invalid"))
    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(to=number, from_=RELAY_NUMBER, body="x")
    assert (raised.value.status, raised.value.code) == (400, 21211)
    with pytest.raises(TwilioRestException) as raised_call:
        client.calls.create(to=number, from_=RELAY_NUMBER, url="https://relay.example/voice")
    assert raised_call.value.code == 21211


def test_sms_to_landline_gets_21614_but_a_call_goes_through(
    sim: CarrierSimulator, client: Client
) -> None:
    landline = "+81457889900"
    sim.set_behaviour(landline, Behaviour(line="landline"))
    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(to=landline, from_=RELAY_NUMBER, body="x")
    assert (raised.value.status, raised.value.code) == (400, 21614)
    call = client.calls.create(to=landline, from_=RELAY_NUMBER, url="https://relay.example/v")
    assert call.status == "queued"


def test_unsubscribed_gets_21610(sim: CarrierSimulator, client: Client) -> None:
    number = new_number()
    sim.set_behaviour(number, Behaviour(unsubscribed=True))
    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(to=number, from_=RELAY_NUMBER, body="x")
    assert raised.value.code == 21610


def test_two_500s_then_success(sim: CarrierSimulator, client: Client) -> None:
    number = new_number()
    sim.set_behaviour(number, Behaviour(http_500_times=2))
    for _ in range(2):
        with pytest.raises(TwilioRestException) as raised:
            client.messages.create(to=number, from_=RELAY_NUMBER, body="x")
        assert raised.value.status == 500
    assert client.messages.create(to=number, from_=RELAY_NUMBER, body="x").status == "queued"
    assert [r.status for r in sim.log.requests_to(number)] == [500, 500, 201]


def test_429_carries_retry_after(sim: CarrierSimulator, client: Client) -> None:
    number = new_number()
    sim.set_behaviour(number, Behaviour(http_429_times=2, retry_after=3))
    response = requests.post(
        f"{sim.api_url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
        data={"To": number, "From": RELAY_NUMBER, "Body": "x"},
        headers=basic_auth(),
        timeout=5,
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json()["code"] == 20429
    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(to=number, from_=RELAY_NUMBER, body="x")
    assert (raised.value.status, raised.value.code) == (429, 20429)
    assert client.messages.create(to=number, from_=RELAY_NUMBER, body="x").status == "queued"


def test_timeout_accepts_the_message_but_answers_too_late(
    sim: CarrierSimulator, relay: FakeRelay
) -> None:
    number = new_number()
    sim.set_behaviour(number, Behaviour(timeout_times=1, hang_seconds=3))
    impatient = Client(ACCOUNT, TOKEN, http_client=RewritingHttpClient(sim.api_url, timeout=0.3))
    with pytest.raises(requests.exceptions.ReadTimeout):
        impatient.messages.create(
            to=number, from_=RELAY_NUMBER, body="x", status_callback=relay.url("/status/sms")
        )
    (record,) = sim.log.requests_to(number)
    assert record.result == "timeout" and record.sid is not None
    # Ambiguous, not lost: the message exists and is delivered.
    wait_for(
        lambda: [
            r
            for r in callbacks(relay, "/status/sms", "MessageSid", record.sid or "")
            if r.params["MessageStatus"] == "delivered"
        ],
        what="delivery of the timed-out message",
    )


def test_reset_closes_the_connection_without_answer(sim: CarrierSimulator) -> None:
    number = new_number()
    sim.set_behaviour(number, Behaviour(reset_times=1))
    url = f"{sim.api_url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    data = {"To": number, "From": RELAY_NUMBER, "Body": "x"}
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(url, data=data, headers=basic_auth(), timeout=5)
    assert requests.post(url, data=data, headers=basic_auth(), timeout=5).status_code == 201
    assert [r.result for r in sim.log.requests_to(number)] == ["reset", "accepted"]


def test_bad_credentials_get_401_and_other_accounts_404(sim: CarrierSimulator) -> None:
    intruder = Client(ACCOUNT, "wrong", http_client=RewritingHttpClient(sim.api_url, timeout=5))
    with pytest.raises(TwilioRestException) as raised:
        intruder.messages.create(to=new_number(), from_=RELAY_NUMBER, body="x")
    assert (raised.value.status, raised.value.code) == (401, 20003)
    other = "AC" + "b2" * 16
    response = requests.post(
        f"{sim.api_url}/2010-04-01/Accounts/{other}/Messages.json",
        data={"To": new_number(), "From": RELAY_NUMBER, "Body": "x"},
        headers=basic_auth(),
        timeout=5,
    )
    assert response.status_code == 404
    assert response.json()["code"] == 20404


def test_japanese_segments(sim: CarrierSimulator, client: Client) -> None:
    long_one = client.messages.create(to=new_number(), from_=RELAY_NUMBER, body="あ" * 100)
    short_one = client.messages.create(to=new_number(), from_=RELAY_NUMBER, body="あ" * 70)
    assert (long_one.num_segments, short_one.num_segments) == ("2", "1")
    by_sid = {r.sid: r.segments for r in sim.log.sms_requests()}
    assert (by_sid[long_one.sid], by_sid[short_one.sid]) == (2, 1)


def test_window_max_counts_segments_per_second(sim: CarrierSimulator, client: Client) -> None:
    start = time.monotonic()
    numbers = [new_number() for _ in range(3)]
    for number in numbers:
        client.messages.create(to=number, from_=RELAY_NUMBER, body="あ" * 100)  # 2 segments
    assert time.monotonic() - start < 1.0, "machine too slow for this check"
    mine = SimLog(r for r in sim.log.sms_requests() if r.to in numbers)
    assert mine.window_max("sms", 1.0) == 6
    assert mine.window_max("sms", 1.0, weight="count") == 3
    assert sim.log.window_max("sms", 1.0) >= 6


# --- what happens after acceptance -----------------------------------------------------------


def test_status_callbacks_are_signed_and_in_order(
    sim: CarrierSimulator, client: Client, relay: FakeRelay
) -> None:
    delivered, lost = new_number(), new_number()
    sim.set_behaviour(lost, Behaviour(sms_outcome="undelivered"))
    sid = send_sms(client, relay, delivered)
    lost_sid = send_sms(client, relay, lost)
    got = wait_for(
        lambda: (
            len(callbacks(relay, "/status/sms", "MessageSid", sid)) >= 2
            and callbacks(relay, "/status/sms", "MessageSid", sid)
        ),
        what="two status callbacks",
    )
    assert [r.params["MessageStatus"] for r in got] == ["sent", "delivered"]
    assert all(r.signed for r in got)
    first = got[0].params
    assert first["SmsSid"] == sid and first["AccountSid"] == ACCOUNT
    assert (first["From"], first["To"], first["ApiVersion"]) == (
        RELAY_NUMBER,
        delivered,
        "2010-04-01",
    )
    assert "ErrorCode" not in got[1].params
    failed = wait_for(
        lambda: (
            len(callbacks(relay, "/status/sms", "MessageSid", lost_sid)) >= 2
            and callbacks(relay, "/status/sms", "MessageSid", lost_sid)
        ),
        what="undelivered callbacks",
    )
    assert [r.params["MessageStatus"] for r in failed] == ["sent", "undelivered"]
    assert failed[1].params["ErrorCode"] == "30003"
    assert [r.status for r in sim.log.callbacks_for(sid)] == [204, 204]
    assert client.messages(sid).fetch().status == "delivered"


def test_status_callback_retried_after_5xx(
    sim: CarrierSimulator, client: Client, relay: FakeRelay
) -> None:
    answers = iter([500, 503])
    relay.handlers["/status/flaky"] = lambda r: (next(answers, 200), "", "text/plain")
    message = client.messages.create(
        to=new_number(), from_=RELAY_NUMBER, body="x", status_callback=relay.url("/status/flaky")
    )
    wait_for(
        lambda: [r for r in sim.log.callbacks_for(message.sid or "") if r.status == 200],
        what="a successful retry",
    )
    attempts = sim.log.callbacks_for(message.sid or "")
    assert [(r.status, r.result) for r in attempts[:3]] == [
        (500, "retry"),
        (503, "retry"),
        (200, "ok"),
    ]
    assert [r.params["MessageStatus"] for r in attempts[:3]] == ["sent"] * 3


def test_sms_reply_is_posted_signed_to_the_webhook(
    sim: CarrierSimulator, client: Client, relay: FakeRelay
) -> None:
    number = new_number()
    sim.set_behaviour(number, Behaviour(sms_reply="１ 了解", sms_reply_delay=5))
    sid = send_sms(client, relay, number)
    (reply,) = wait_for(
        lambda: [r for r in relay.at("/webhooks/twilio/sms") if r.params.get("From") == number],
        what="the SMS reply",
    )
    assert reply.signed
    params = reply.params
    assert (params["To"], params["Body"], params["AccountSid"]) == (
        RELAY_NUMBER,
        "１ 了解",
        ACCOUNT,
    )
    assert params["MessageSid"].startswith("SM") and params["MessageSid"] != sid
    assert params["SmsSid"] == params["SmsMessageSid"] == params["MessageSid"]
    assert (params["NumMedia"], params["NumSegments"], params["ApiVersion"]) == (
        "0",
        "1",
        "2010-04-01",
    )
    # The simulator logs the reply once the relay's answer is back, just after the relay saw it.
    (logged,) = wait_for(
        lambda: [r for r in sim.log.of_kind("inbound_sms") if r.from_ == number],
        what="the reply in the simulator's log",
    )
    assert logged.status == 200 and "受け付けました" in (logged.response or "")


def test_link_is_opened_then_answered(
    sim: CarrierSimulator, client: Client, relay: FakeRelay
) -> None:
    number = new_number()
    sim.set_behaviour(number, Behaviour(link_answer="2", link_delay=10))
    link = relay.url("/a/K7QF-tok.en_1")
    send_sms(client, relay, number, body=f"【訓練】避難所開設。回答:{link}です")
    wait_for(lambda: relay.at("/a/K7QF-tok.en_1")[1:], what="GET and POST of the link")
    opened, answered = relay.at("/a/K7QF-tok.en_1")
    assert (opened.method, answered.method) == ("GET", "POST")
    assert answered.params == {"answer": "2"}

    def logged_taps() -> list[LogRecord]:
        return [r for r in sim.log.of_kind("link_get", "link_post") if r.to == number]

    # The simulator logs a tap once the relay's answer is back, just after the relay saw it.
    wait_for(lambda: len(logged_taps()) == 2, what="both taps in the simulator's log")
    taps = logged_taps()
    assert [(r.kind, r.status) for r in taps] == [("link_get", 200), ("link_post", 200)]


def test_call_with_machine_detection_and_a_keypress(
    sim: CarrierSimulator, client: Client, relay: FakeRelay
) -> None:
    number = new_number()
    sim.set_behaviour(number, Behaviour(digits="9 1", ring_delay=2, answer_delay=5))
    call = client.calls.create(
        to=number,
        from_=RELAY_NUMBER,
        url=relay.url("/voice/twiml"),
        status_callback=relay.url("/status/call"),
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        machine_detection="Enable",
    )
    assert call.sid is not None and call.sid.startswith("CA") and call.status == "queued"
    done = wait_for(
        lambda: [
            r
            for r in callbacks(relay, "/status/call", "CallSid", call.sid or "")
            if r.params["CallStatus"] == "completed"
        ],
        what="the completed callback",
    )
    (fetch,) = callbacks(relay, "/voice/twiml", "CallSid", call.sid)
    assert fetch.signed
    assert (fetch.params["AnsweredBy"], fetch.params["CallStatus"]) == ("human", "in-progress")
    assert fetch.params["Direction"] == "outbound-api"
    gathers = callbacks(relay, "/voice/gather", "CallSid", call.sid)
    assert [g.params["Digits"] for g in gathers] == ["9", "1"]  # "repeat", then acknowledge
    assert all(g.signed and g.params["AnsweredBy"] == "human" for g in gathers)
    progress = callbacks(relay, "/status/call", "CallSid", call.sid)
    assert [r.params["CallStatus"] for r in progress] == [
        "initiated",
        "ringing",
        "in-progress",
        "completed",
    ]
    assert [r.params["SequenceNumber"] for r in progress] == ["0", "1", "2", "3"]
    assert all(r.signed and r.params["CallbackSource"] == "call-progress-events" for r in progress)
    assert progress[2].params["AnsweredBy"] == "human"
    assert int(done[0].params["CallDuration"]) > 0 and done[0].params["AnsweredBy"] == "human"
    assert [r.kind for r in sim.log if r.sid == call.sid and r.kind != "status_callback"] == [
        "call",
        "twiml_fetch",
        "gather",
        "gather",
    ]


def test_answering_machine_and_busy(
    sim: CarrierSimulator, client: Client, relay: FakeRelay
) -> None:
    machine, busy = new_number(), new_number()
    sim.set_behaviour(machine, Behaviour(call_outcome="machine", digits="1"))
    sim.set_behaviour(busy, Behaviour(call_outcome="busy"))
    sids = {}
    for number in (machine, busy):
        call = client.calls.create(
            to=number,
            from_=RELAY_NUMBER,
            url=relay.url("/voice/twiml"),
            status_callback=relay.url("/status/call"),
            machine_detection="Enable",
        )
        sids[number] = call.sid or ""
    for number, final in ((machine, "completed"), (busy, "busy")):
        (last,) = wait_for(
            lambda n=number: callbacks(relay, "/status/call", "CallSid", sids[n]),
            what=f"final callback for {number}",
        )
        assert last.params["CallStatus"] == final and last.signed
    (fetch,) = callbacks(relay, "/voice/twiml", "CallSid", sids[machine])
    assert fetch.params["AnsweredBy"] == "machine_start"
    assert callbacks(relay, "/voice/gather", "CallSid", sids[machine]) == []
    assert callbacks(relay, "/voice/twiml", "CallSid", sids[busy]) == []
    assert client.calls(sids[busy]).fetch().status == "busy"


@needs_spec
def test_full_openapi_core_validation_accepts_the_clients_requests(relay: FakeRelay) -> None:
    """validate="full" runs openapi-core's own request validator (repeated keys included)."""

    async def scenario(lone: CarrierSimulator) -> None:
        async with lone:
            await asyncio.to_thread(
                _send_one_of_each,
                Client(ACCOUNT, TOKEN, http_client=RewritingHttpClient(lone.api_url, timeout=5)),
            )
            assert lone.violations == []

    asyncio.run(
        scenario(
            CarrierSimulator(ACCOUNT, TOKEN, relay.url("/sms"), validate="full", callbacks=False)
        )
    )


def _send_one_of_each(client: Client) -> None:
    client.messages.create(
        to=new_number(), from_=RELAY_NUMBER, body="x", status_callback="https://r.example/s"
    )
    client.calls.create(
        to=new_number(),
        from_=RELAY_NUMBER,
        url="https://r.example/v",
        status_callback="https://r.example/s",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        machine_detection="Enable",
    )


def test_seeded_fault_rates_are_reproducible(relay: FakeRelay) -> None:
    def statuses(seed: int) -> list[int]:
        async def scenario() -> list[int]:
            population = Population(seed=seed, faults=FaultRates(http_500=0.3, http_429=0.2))
            async with (
                CarrierSimulator(
                    ACCOUNT, TOKEN, relay.url("/sms"), population, callbacks=False
                ) as lone,
                aiohttp.ClientSession(headers=basic_auth()) as http,
            ):
                url = f"{lone.api_url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
                codes = []
                for i in range(30):
                    data = {"To": f"+8180{i % 5:08d}", "From": RELAY_NUMBER, "Body": "x"}
                    async with http.post(url, data=data) as response:
                        codes.append(response.status)
                return codes

        return asyncio.run(scenario())

    first = statuses(11)
    assert first == statuses(11)
    assert {500, 429, 201} <= set(first)
    assert first != statuses(12)


# --- control endpoints and the standalone process --------------------------------------------


def test_control_endpoints(sim: CarrierSimulator, client: Client) -> None:
    number = new_number()
    answer = requests.post(
        f"{sim.api_url}/_sim/behaviours", json={number: {"line": "landline"}}, timeout=5
    )
    assert answer.json() == {"updated": 1}
    with pytest.raises(TwilioRestException):
        client.messages.create(to=number, from_=RELAY_NUMBER, body="x")
    records = requests.get(f"{sim.api_url}/_sim/log", params={"kind": "sms"}, timeout=5).json()
    assert [r["result"] for r in records if r["to"] == number] == ["21614"]
    stats = requests.get(f"{sim.api_url}/_sim/stats", timeout=5).json()
    assert stats["by_kind"]["sms"] >= 1 and stats["violations"] == 0
    idle = requests.post(f"{sim.api_url}/_sim/wait_idle", params={"timeout": 20}, timeout=30)
    assert idle.json() == {"idle": True}
    bad = requests.post(f"{sim.api_url}/_sim/behaviours", json={number: {"mood": 1}}, timeout=5)
    assert bad.status_code == 400


def test_reset_forgets_state(relay: FakeRelay) -> None:
    async def scenario() -> None:
        async with CarrierSimulator(ACCOUNT, TOKEN, relay.url("/sms"), speed=SPEED) as lone:
            async with aiohttp.ClientSession(headers=basic_auth()) as http:
                url = f"{lone.api_url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
                data = {"To": new_number(), "From": RELAY_NUMBER, "Body": "x"}
                async with http.post(url, data=data) as response:
                    assert response.status == 201
                await lone.wait_idle(10)
                assert len(lone.log) == 1 and len(lone.messages) == 1
                async with http.post(f"{lone.api_url}/_sim/reset") as response:
                    assert response.status == 200
            assert len(lone.log) == 0 and lone.messages == {}

    asyncio.run(scenario())


def test_standalone_process(tmp_path: Path) -> None:
    behaviours = tmp_path / "population.json"
    Population(behaviours={"+819099990000": Behaviour(line="landline")}).dump(behaviours)
    secret = "process-token-never-printed"
    env = {**os.environ, "TWILIO_AUTH_TOKEN": secret}
    command = [
        sys.executable,
        "-m",
        "simulator",
        "--sms-webhook",
        "http://127.0.0.1:9/webhooks/twilio/sms",
        "--speed",
        "50",
        "--seed",
        "3",
        "--behaviours",
        str(behaviours),
        "--smtp-starttls",
        "--smtp-ca-out",
        str(tmp_path / "ca.pem"),
    ]
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert ready["speed"] == 50 and (tmp_path / "ca.pem").read_bytes().startswith(b"-----")
        headers = basic_auth(ready["account_sid"], secret)
        response = requests.post(
            f"{ready['api_url']}/2010-04-01/Accounts/{ready['account_sid']}/Messages.json",
            data={"To": "+819099990000", "From": RELAY_NUMBER, "Body": "x"},
            headers=headers,
            timeout=5,
        )
        assert response.json()["code"] == 21614
        stats = requests.get(f"{ready['api_url']}/_sim/stats", timeout=5).json()
        assert stats["by_kind"] == {"sms": 1}
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert secret not in out + err


# --- SMTP ------------------------------------------------------------------------------------


def _mail(to: str, subject: str, text: str, html: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "金沢区役所 <relay@kanazawa.example.jp>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{time.monotonic_ns()}@kanazawa.example.jp>"
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def _smtp_send(sim: CarrierSimulator, message: EmailMessage, password: str = SMTP_PASSWORD) -> None:
    asyncio.run(
        aiosmtplib.send(
            message,
            hostname="127.0.0.1",
            port=sim.smtp_port,
            username=SMTP_USER,
            password=password,
            start_tls=True,
            tls_context=sim.smtp_client_context(),
            timeout=10,
        )
    )


def test_mail_over_starttls_and_auth_with_japanese_subject(
    sim: CarrierSimulator, relay: FakeRelay
) -> None:
    address = f"leader{next(_numbers)}@example.jp"
    sim.set_behaviour(address, Behaviour(email_link_answer="1", email_link_delay=5))
    subject = "【訓練】金沢区 避難所開設のお知らせ（レベル３）"
    link = relay.url("/a/MAILTOKEN")
    message = _mail(
        address, subject, f"回答はこちら: {link}\n金沢区役所", f"<a href='{link}'>回答</a>"
    )
    _smtp_send(sim, message)
    (record,) = [r for r in sim.log.requests_to(address)]
    assert record.kind == "email" and record.status == 250
    assert record.subject == subject
    assert record.body is not None and link in record.body
    assert record.html is not None and "回答" in record.html
    assert record.sid == message["Message-ID"]
    wait_for(lambda: relay.at("/a/MAILTOKEN")[1:], what="the email link tap")
    assert [r.method for r in relay.at("/a/MAILTOKEN")] == ["GET", "POST"]


def test_mail_rejected_with_550(sim: CarrierSimulator) -> None:
    address = f"gone{next(_numbers)}@example.jp"
    sim.set_behaviour(address, Behaviour(email_outcome="reject"))
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as raised:
        _smtp_send(sim, _mail(address, "件名", "本文"))
    assert raised.value.recipients[0].code == 550
    assert [r.status for r in sim.log.requests_to(address)] == [550]


def test_mail_deferred_twice_with_451_then_accepted(sim: CarrierSimulator) -> None:
    address = f"busy{next(_numbers)}@example.jp"
    sim.set_behaviour(address, Behaviour(email_defer_times=2))
    for _ in range(2):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as raised:
            _smtp_send(sim, _mail(address, "件名", "本文"))
        assert raised.value.recipients[0].code == 451
    _smtp_send(sim, _mail(address, "件名", "本文"))
    assert [r.status for r in sim.log.requests_to(address)] == [451, 451, 250]


def test_mail_with_wrong_password_is_refused(sim: CarrierSimulator) -> None:
    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        _smtp_send(sim, _mail("someone@example.jp", "件名", "本文"), password="nope")


def test_wait_idle_returns_once_everything_happened(
    sim_thread: SimulatorThread, client: Client, relay: FakeRelay
) -> None:
    number = new_number()
    sim_thread.sim.set_behaviour(number, Behaviour(sms_reply="1", sms_reply_delay=50))
    send_sms(client, relay, number)
    sim_thread.wait_idle(20)
    assert [r for r in relay.at("/webhooks/twilio/sms") if r.params.get("From") == number]


# twilio's async client passes `auth=` to aiohttp, which now warns about it (FINDINGS.md).
@pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning")
def test_async_twilio_client_is_accepted(sim: CarrierSimulator) -> None:
    """The relay sends through twilio's aiohttp-based client; it must pass the same checks."""

    class RewritingAsyncClient(AsyncTwilioHttpClient):
        async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
            parts, base = urlsplit(url), urlsplit(sim.api_url)
            url = urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))
            return await super().request(method, url, *args, **kwargs)

    async def scenario() -> tuple[str | None, str | None]:
        http = RewritingAsyncClient(timeout=5)
        try:
            client = Client(ACCOUNT, TOKEN, http_client=http)
            message = await client.messages.create_async(
                to=new_number(), from_=RELAY_NUMBER, body="非同期クライアント"
            )
            call = await client.calls.create_async(
                to=new_number(),
                from_=RELAY_NUMBER,
                url="https://relay.example/voice",
                status_callback_event=["initiated", "answered"],
            )
            return message.status, call.status
        finally:
            await http.close()

    assert asyncio.run(scenario()) == ("queued", "queued")
