"""TwilioSms, TwilioVoice and SmtpEmail against the carrier simulator, over real HTTP and SMTP.

One simulator (in a background thread, time compressed) and one webhook receiver (an aiohttp
app in its own thread that checks every request's X-Twilio-Signature with
`verify_twilio_signature` and answers calls with our own TwiML builders) serve the module.
Each test uses fresh numbers; the channels run on the test's own loop (asyncio.run).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from aiohttp import web

from channels.base import (
    ChannelError,
    EmailMessage,
    Outcome,
    Receipt,
    SmsMessage,
    VoiceCall,
)
from channels.email_smtp import SmtpEmail
from channels.twilio_errors import call_outcome, message_outcome
from channels.twilio_http import RelayTwilioHttpClient
from channels.twilio_signature import verify_twilio_signature
from channels.twilio_sms import TwilioSms
from channels.twilio_voice import TwilioVoice, call_twiml, hangup_twiml, say_twiml
from simulator import Behaviour, CarrierSimulator, Population, SimulatorThread

ACCOUNT = "AC" + "c3" * 16
TOKEN = "integration-test-token"
FROM = "+815011112222"
SMTP_USER, SMTP_PASSWORD = "relay", "mail-secret"
MAIL_FROM = "金沢区役所 防災課 <bousai@city.example.jp>"
SPEED = 200.0
T = TypeVar("T")
_numbers = itertools.count(1)


def new_number() -> str:
    return f"+8190{next(_numbers) + 70_000_000:08d}"


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
    return value


# --- the relay's side: webhooks ---------------------------------------------------------------


@dataclass
class Hook:
    path: str
    params: dict[str, str]
    signed: bool


class Webhooks:
    """Receives what the simulator posts; every request's signature is checked."""

    def __init__(self) -> None:
        self.received: list[Hook] = []
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str, **match: str) -> list[Hook]:
        return [
            h
            for h in list(self.received)
            if h.path == path and all(h.params.get(k) == v for k, v in match.items())
        ]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        pairs = [(k, str(v)) for k, v in form.items()]
        signed = verify_twilio_signature(
            self.url(request.path_qs), pairs, request.headers.get("X-Twilio-Signature"), [TOKEN]
        )
        params = dict(pairs)
        self.received.append(Hook(request.path, params, signed))
        if not signed:
            return web.Response(status=403)
        if request.path == "/voice/twiml":
            if params.get("AnsweredBy", "human") not in ("human", "unknown"):
                return _xml(hangup_twiml())
            return _xml(
                call_twiml(
                    "【訓練】金沢区役所です。震度５強の地震が発生しました。",
                    gather_action=self.url("/voice/gather"),
                    prompt="確認した場合は1を押してください。",
                )
            )
        if request.path == "/voice/gather":
            return _xml(say_twiml("確認しました。ありがとうございました。", "ja-JP"))
        return web.Response(status=204)


def _xml(document: str) -> web.Response:
    return web.Response(text=document, content_type="text/xml")


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hooks() -> Iterator[Webhooks]:
    receiver = Webhooks()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def sim(hooks: Webhooks) -> Iterator[CarrierSimulator]:
    simulator = CarrierSimulator(
        account_sid=ACCOUNT,
        auth_token=TOKEN,
        sms_webhook_url=hooks.url("/webhooks/twilio/sms"),
        population=Population(seed=3),
        speed=SPEED,
        smtp_username=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
        smtp_starttls=True,
    )
    with SimulatorThread(simulator):
        yield simulator


@pytest.fixture(autouse=True)
def _sim_stays_clean(request: pytest.FixtureRequest) -> Iterator[None]:
    """Nothing we sent is something Twilio would refuse; the simulator itself never failed."""
    yield
    if "sim" in request.fixturenames:
        simulator: CarrierSimulator = request.getfixturevalue("sim")
        assert simulator.violations == []
        assert simulator.errors == []


def with_sms(sim: CarrierSimulator, body: Callable[[TwilioSms], Awaitable[T]], **http: Any) -> T:
    """Run `body` with a fresh TwilioSms on a fresh loop, closing the channel afterwards."""

    async def run() -> T:
        sms = TwilioSms(
            ACCOUNT,
            TOKEN,
            from_number=FROM,
            http_client=RelayTwilioHttpClient(sim.api_url, **http),
        )
        try:
            return await body(sms)
        finally:
            await sms.close()

    return asyncio.run(run())


def send_error(sim: CarrierSimulator, to: str, **http: Any) -> ChannelError:
    async def body(sms: TwilioSms) -> ChannelError:
        with pytest.raises(ChannelError) as caught:
            await sms.send_sms(SmsMessage(to, "【訓練】テスト"))
        return caught.value

    return with_sms(sim, body, **http)


# --- SMS ---------------------------------------------------------------------------------------


def test_sms_accepted_with_segments_and_tracked(sim: CarrierSimulator, hooks: Webhooks) -> None:
    to = new_number()
    text = "【訓練】金沢区役所より。震度５強の地震が発生しました。" * 3  # 81 chars: 2 segments
    callback = hooks.url("/webhooks/twilio/status")

    receipt: Receipt = with_sms(sim, lambda sms: sms.send_sms(SmsMessage(to, text, callback)))

    assert (receipt.provider, receipt.outcome, receipt.segments) == (
        "twilio-sms",
        Outcome.QUEUED,
        2,
    )
    assert receipt.provider_id.startswith("SM")
    [record] = sim.log.requests_to(to)
    assert (record.sid, record.result, record.body) == (receipt.provider_id, "accepted", text)
    assert record.params["From"] == FROM and record.params["StatusCallback"] == callback
    delivered = wait_for(
        lambda: hooks.at(
            "/webhooks/twilio/status", MessageSid=receipt.provider_id, MessageStatus="delivered"
        ),
        what="the delivered callback",
    )
    assert delivered[0].signed
    callbacks = hooks.at("/webhooks/twilio/status", MessageSid=receipt.provider_id)
    outcomes = [message_outcome(h.params["MessageStatus"]) for h in callbacks]
    assert None not in outcomes and outcomes[-1] is Outcome.DELIVERED


def test_sms_through_a_messaging_service(sim: CarrierSimulator) -> None:
    to = new_number()

    async def run() -> Receipt:
        sms = TwilioSms(
            ACCOUNT,
            TOKEN,
            messaging_service_sid="MG" + "d4" * 16,
            http_client=RelayTwilioHttpClient(sim.api_url),
        )
        try:
            return await sms.send_sms(SmsMessage(to, "test"))
        finally:
            await sms.close()

    receipt = asyncio.run(run())
    [record] = sim.log.requests_to(to)
    assert record.sid == receipt.provider_id
    assert record.params["MessagingServiceSid"] == "MG" + "d4" * 16


@pytest.mark.parametrize(
    ("behaviour", "code"),
    [
        (Behaviour(line="invalid"), "21211"),
        (Behaviour(line="landline"), "21614"),
        (Behaviour(unsubscribed=True), "21610"),
    ],
)
def test_sms_refusals_are_permanent(sim: CarrierSimulator, behaviour: Behaviour, code: str) -> None:
    to = new_number()
    sim.set_behaviour(to, behaviour)
    error = send_error(sim, to)
    assert (error.permanent, error.code, error.ambiguous) == (True, code, False)
    assert to not in str(error)  # the provider's message is scrubbed of the number


def test_sms_500_is_transient_and_the_retry_goes_through(sim: CarrierSimulator) -> None:
    to = new_number()
    sim.set_behaviour(to, Behaviour(http_500_times=1))
    error = send_error(sim, to)
    assert (error.permanent, error.ambiguous, error.code) == (False, False, "20500")
    receipt = with_sms(sim, lambda sms: sms.send_sms(SmsMessage(to, "retry")))
    assert receipt.outcome is Outcome.QUEUED


def test_sms_429_is_transient_with_retry_after(sim: CarrierSimulator) -> None:
    to = new_number()
    sim.set_behaviour(to, Behaviour(http_429_times=1, retry_after=2.5))
    error = send_error(sim, to)
    assert (error.permanent, error.code, error.retry_after) == (False, "20429", 2.5)


def test_sms_timeout_is_ambiguous_and_the_message_did_go_out(sim: CarrierSimulator) -> None:
    to = new_number()
    sim.set_behaviour(to, Behaviour(timeout_times=1, hang_seconds=10))
    started = time.monotonic()
    error = send_error(sim, to, timeout=0.5)
    assert time.monotonic() - started < 3
    assert (error.permanent, error.ambiguous, error.code) == (False, True, "timeout")
    [record] = sim.log.requests_to(to)
    assert record.result == "timeout" and record.sid in sim.messages  # accepted all the same


def test_sms_reset_is_ambiguous(sim: CarrierSimulator) -> None:
    to = new_number()
    sim.set_behaviour(to, Behaviour(reset_times=1))
    error = send_error(sim, to)
    assert (error.permanent, error.ambiguous) == (False, True)


# --- voice ------------------------------------------------------------------------------------


def place_call(sim: CarrierSimulator, hooks: Webhooks, to: str) -> Receipt:
    async def run() -> Receipt:
        voice = TwilioVoice(
            ACCOUNT, TOKEN, from_number=FROM, http_client=RelayTwilioHttpClient(sim.api_url)
        )
        try:
            return await voice.place_call(
                VoiceCall(to, hooks.url("/voice/twiml"), hooks.url("/voice/status"))
            )
        finally:
            await voice.close()

    return asyncio.run(run())


def final_call_status(hooks: Webhooks, sid: str) -> Hook:
    finals = {"completed", "busy", "no-answer", "failed", "canceled"}

    def final() -> list[Hook]:
        return [
            h
            for h in hooks.at("/voice/status", CallSid=sid)
            if h.params.get("CallStatus") in finals
        ]

    return wait_for(final, what="the call's final status callback")[0]


def test_call_with_machine_detection_events_and_keypress(
    sim: CarrierSimulator, hooks: Webhooks
) -> None:
    to = new_number()
    sim.set_behaviour(to, Behaviour(digits="1"))
    receipt = place_call(sim, hooks, to)

    assert (receipt.provider, receipt.outcome) == ("twilio-voice", Outcome.QUEUED)
    call = sim.calls[receipt.provider_id]
    assert call.machine_detection
    assert call.events == {"initiated", "ringing", "answered", "completed"}
    assert call.status_callback == hooks.url("/voice/status")
    assert call.method == "POST" and call.status_callback_method == "POST"

    final = final_call_status(hooks, receipt.provider_id)
    gathered = hooks.at("/voice/gather", CallSid=receipt.provider_id)
    assert [h.params.get("Digits") for h in gathered] == ["1"]  # our TwiML's Gather worked
    events = [
        h.params["CallStatus"] for h in hooks.at("/voice/status", CallSid=receipt.provider_id)
    ]
    assert events[0] == "initiated" and events[-1] == "completed"
    assert "in-progress" in events
    answered_by = final.params.get("AnsweredBy")
    assert call_outcome(final.params["CallStatus"], answered_by) is Outcome.COMPLETED
    assert all(h.signed for h in hooks.received)


def test_call_answered_by_machine(sim: CarrierSimulator, hooks: Webhooks) -> None:
    to = new_number()
    sim.set_behaviour(to, Behaviour(call_outcome="machine"))
    receipt = place_call(sim, hooks, to)
    final = final_call_status(hooks, receipt.provider_id)
    answered_by = final.params.get("AnsweredBy") or next(
        h.params.get("AnsweredBy") for h in hooks.at("/voice/twiml", CallSid=receipt.provider_id)
    )
    assert call_outcome(final.params["CallStatus"], answered_by) is Outcome.MACHINE


def test_call_to_an_invalid_number_is_permanent(sim: CarrierSimulator, hooks: Webhooks) -> None:
    to = new_number()
    sim.set_behaviour(to, Behaviour(line="invalid"))
    with pytest.raises(ChannelError) as caught:
        place_call(sim, hooks, to)
    assert caught.value.permanent and caught.value.code == "21211"


# --- email ------------------------------------------------------------------------------------


def mail_run(sim: CarrierSimulator, *messages: EmailMessage) -> list[Receipt | ChannelError]:
    async def run() -> list[Receipt | ChannelError]:
        channel = SmtpEmail(
            "127.0.0.1",
            sim.smtp_port,
            SMTP_USER,
            SMTP_PASSWORD,
            mail_from=MAIL_FROM,
            starttls=True,
            tls_context=sim.smtp_client_context(),
        )
        results: list[Receipt | ChannelError] = []
        try:
            for message in messages:
                try:
                    results.append(await channel.send_email(message))
                except ChannelError as exc:
                    results.append(exc)
        finally:
            await channel.close()
        return results

    return asyncio.run(run())


def test_email_over_starttls_with_auth_and_japanese_subject(sim: CarrierSimulator) -> None:
    to = f"leader{next(_numbers)}@example.jp"
    subject = "【訓練】金沢区 震度５強 — 安否確認のお願い"
    text = "金沢区役所です。\n回答: https://relay.example.jp/a/tok"
    [receipt] = mail_run(sim, EmailMessage(to, subject, text, html="<p>金沢区役所です。</p>"))

    assert isinstance(receipt, Receipt)
    assert (receipt.provider, receipt.outcome) == ("smtp", Outcome.SENT)
    [record] = sim.log.requests_to(to)
    assert record.sid == receipt.provider_id and receipt.provider_id.endswith("@city.example.jp>")
    assert record.subject == subject
    assert record.body is not None and record.body.strip() == text
    assert record.html is not None and "金沢区役所です。" in record.html
    assert record.from_ == "bousai@city.example.jp"


def test_email_550_is_permanent_and_451_transient(sim: CarrierSimulator) -> None:
    rejected = f"gone{next(_numbers)}@example.jp"
    deferred = f"busy{next(_numbers)}@example.jp"
    sim.set_behaviour(rejected, Behaviour(email_outcome="reject"))
    sim.set_behaviour(deferred, Behaviour(email_defer_times=1))
    results = mail_run(
        sim,
        EmailMessage(rejected, "件名", "本文"),
        EmailMessage(deferred, "件名", "本文"),
        EmailMessage(deferred, "件名", "本文"),  # the retry is accepted
    )
    first, second, third = results
    assert isinstance(first, ChannelError) and (first.permanent, first.code) == (True, "smtp-550")
    assert isinstance(second, ChannelError)
    assert (second.permanent, second.code, second.ambiguous) == (False, "smtp-451", False)
    assert isinstance(third, Receipt) and third.outcome is Outcome.SENT
