"""Twilio's REST API for Messages and Calls, as the relay's twilio client sees it.

Per request, in order: HTTP Basic auth (401/20003), the account in the path (404/20404),
validation against Twilio's OpenAPI spec plus the rules Twilio enforces at run time (400, and
the request is recorded in `violations`: the relay sent something Twilio refuses), injected
faults (500, 429 + Retry-After, a hang past the client's timeout, a reset connection), the
recipient's line (21211 invalid, 21614 landline for SMS, 21610 unsubscribed), then 201.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import re
from typing import Literal
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import MultiDict

from . import messaging, voice
from .behaviour import Behaviour
from .context import Context, Violation
from .log import LogRecord
from .resources import Call, Message, error_body, new_sid
from .segments import count_segments
from .spec import TwilioSpec

PREFIX = "/2010-04-01/Accounts/{AccountSid}"
MESSAGES = PREFIX + "/Messages.json"
MESSAGE = PREFIX + "/Messages/{Sid}.json"
CALLS = PREFIX + "/Calls.json"
CALL = PREFIX + "/Calls/{Sid}.json"
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
CALL_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})

ValidateMode = Literal["all", "sample", "full", "off"]
Fault = Literal["500", "429", "timeout", "reset"]


class TwilioApi:
    def __init__(
        self,
        ctx: Context,
        auth_token: str,
        spec: TwilioSpec | None,
        validate: ValidateMode = "all",
        validate_every: int = 10,
    ) -> None:
        self.ctx = ctx
        self.spec = spec if validate != "off" else None
        self.validate_mode = validate
        self.validate_every = max(1, validate_every)
        self._seen = 0
        credentials = base64.b64encode(f"{ctx.account_sid}:{auth_token}".encode()).decode()
        self._expected_auth = f"Basic {credentials}"
        self._released = asyncio.Event()  # set on stop: hanging "timeout" requests end

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(MESSAGES, self.create_message),
            web.get(MESSAGE, self.fetch_message),
            web.post(CALLS, self.create_call),
            web.get(CALL, self.fetch_call),
        ]

    def release(self) -> None:
        self._released.set()

    # --- Messages -------------------------------------------------------------------------

    async def create_message(self, request: web.Request) -> web.StreamResponse:
        form, raw = await _read_form(request)
        body = form.get("Body", "")
        record = LogRecord(
            kind="sms",
            to=form.get("To"),
            from_=form.get("From"),
            body=body,
            segments=count_segments(body),
            params=dict(form),
        )
        denied = self._admit(request, MESSAGES, form, raw, record)
        if denied is not None:
            return denied
        to = form["To"]
        behaviour = self.ctx.population.behaviour_for(to, body)
        record.reminded = behaviour.reminder
        fault = self._fault("sms", to, behaviour)
        if fault is not None and fault != "timeout":
            return await self._faulted(request, record, fault, behaviour)
        refusal = _sms_refusal(behaviour)
        if refusal is not None:
            code, text = refusal
            return self._error(record, 400, code, text.format(to=to))
        message = Message(
            sid=new_sid("SM"),
            account_sid=self.ctx.account_sid,
            to=to,
            from_=form.get("From"),
            body=body,
            segments=record.segments,
            messaging_service_sid=form.get("MessagingServiceSid"),
            status_callback=form.get("StatusCallback"),
        )
        self.ctx.messages[message.sid] = message
        if self.ctx.callbacks:
            messaging.start(self.ctx, message, behaviour)
        return await self._created(
            request, record, message.sid, message.to_json(), fault, behaviour
        )

    async def fetch_message(self, request: web.Request) -> web.StreamResponse:
        return await self._fetch(request, MESSAGE, self.ctx.messages)

    # --- Calls ----------------------------------------------------------------------------

    async def create_call(self, request: web.Request) -> web.StreamResponse:
        form, raw = await _read_form(request)
        record = LogRecord(
            kind="call",
            to=form.get("To"),
            from_=form.get("From"),
            body=form.get("Url") or form.get("Twiml"),
            params=dict(form),
        )
        denied = self._admit(request, CALLS, form, raw, record)
        if denied is not None:
            return denied
        to = form["To"]
        behaviour = self.ctx.population.behaviour_for(to)
        fault = self._fault("call", to, behaviour)
        if fault is not None and fault != "timeout":
            return await self._faulted(request, record, fault, behaviour)
        if behaviour.line == "invalid":
            return self._error(record, 400, 21211, f"Invalid 'To' Phone Number: {to}")
        events = {e for value in form.getall("StatusCallbackEvent", []) for e in value.split()}
        call = Call(
            sid=new_sid("CA"),
            account_sid=self.ctx.account_sid,
            to=to,
            from_=form["From"],
            url=form.get("Url"),
            method=form.get("Method", "POST").upper(),
            twiml=form.get("Twiml"),
            status_callback=form.get("StatusCallback"),
            status_callback_method=form.get("StatusCallbackMethod", "POST").upper(),
            events=frozenset(events & CALL_EVENTS),
            machine_detection=form.get("MachineDetection") in ("Enable", "DetectMessageEnd"),
        )
        self.ctx.calls[call.sid] = call
        if self.ctx.callbacks:
            voice.start(self.ctx, call, behaviour)
        return await self._created(request, record, call.sid, call.to_json(), fault, behaviour)

    async def fetch_call(self, request: web.Request) -> web.StreamResponse:
        return await self._fetch(request, CALL, self.ctx.calls)

    # --- shared steps ---------------------------------------------------------------------

    def _admit(
        self,
        request: web.Request,
        template: str,
        form: MultiDict[str],
        raw: bytes,
        record: LogRecord,
    ) -> web.Response | None:
        """The checks every create request goes through; a response if it fails one."""
        denied = self._authorize(request, record)
        if denied is None:
            errors = self._validate(request, template, form, raw)
            if errors:
                denied = self._violation(request, record, form, errors)
        return denied

    async def _fetch(
        self, request: web.Request, template: str, store: dict[str, Message] | dict[str, Call]
    ) -> web.Response:
        # Fetches are not logged: the log's sms/call records are sends, counted by tests.
        denied = self._authorize(request, None)
        if denied is not None:
            return denied
        errors = self._validate(request, template, MultiDict(), b"")
        if errors:
            return self._violation(request, None, MultiDict(), errors)
        resource = store.get(request.match_info["Sid"])
        if resource is None:
            return _json(404, error_body(404, 20404, _not_found(request)))
        return _json(200, resource.to_json())

    def _authorize(self, request: web.Request, record: LogRecord | None) -> web.Response | None:
        supplied = request.headers.get("Authorization", "")
        if not hmac.compare_digest(supplied.encode(), self._expected_auth.encode()):
            response = self._error(record, 401, 20003, "Authentication Error - invalid username")
            response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return response
        if request.match_info["AccountSid"] != self.ctx.account_sid:
            # Twilio answers a request for another account's resources as "not found".
            return self._error(record, 404, 20404, _not_found(request))
        return None

    def _validate(
        self, request: web.Request, template: str, form: MultiDict[str], raw: bytes
    ) -> list[str]:
        errors = _runtime_rules(template, form) if request.method == "POST" else []
        if self.spec is None:
            return errors
        if self.validate_mode == "sample":
            self._seen += 1
            if self._seen % self.validate_every:
                return errors
        if self.validate_mode == "full":
            return errors + self.spec.validate_full(
                request.method,
                request.path,
                request.query.items(),
                request.headers,
                request.content_type,
                raw,
            )
        return errors + self.spec.validate(
            request.method,
            template,
            request.match_info,
            request.headers,
            request.content_type,
            form,
        )

    def _violation(
        self,
        request: web.Request,
        record: LogRecord | None,
        form: MultiDict[str],
        errors: list[str],
    ) -> web.Response:
        params: dict[str, list[str]] = {}
        for key, value in form.items():
            params.setdefault(key, []).append(value)
        self.ctx.violations.append(Violation(request.method, request.path, tuple(errors), params))
        code, _, text = errors[0].partition(" ")
        if not code.isdigit():
            # A spec violation Twilio would name with a parameter-specific code.
            code, text = "20001", "Invalid parameter: " + "; ".join(errors)
        return self._error(record, 400, int(code), text)

    def _fault(self, channel: str, to: str, behaviour: Behaviour) -> Fault | None:
        """The fault, if any, this request to `to` meets: first the recipient's own counters,
        then the population's seeded rates."""
        attempt = n = self.ctx.next_attempt(channel, to)
        counters: tuple[tuple[Fault, int], ...] = (
            ("500", behaviour.http_500_times),
            ("429", behaviour.http_429_times),
            ("timeout", behaviour.timeout_times),
            ("reset", behaviour.reset_times),
        )
        for fault, times in counters:
            if n < times:
                return fault
            n -= times
        rates = self.ctx.population.faults
        if not rates.any:
            return None
        draw = self.ctx.population.draw("api", channel, to, attempt)
        shares: tuple[tuple[Fault, float], ...] = (
            ("500", rates.http_500),
            ("429", rates.http_429),
            ("timeout", rates.timeout),
            ("reset", rates.reset),
        )
        for fault, rate in shares:
            if draw < rate:
                return fault
            draw -= rate
        return None

    async def _faulted(
        self, request: web.Request, record: LogRecord, fault: Fault, behaviour: Behaviour
    ) -> web.StreamResponse:
        if fault == "500":
            return self._error(record, 500, 20500, "Internal Server Error")
        if fault == "429":
            retry_after = (
                behaviour.retry_after
                if behaviour.http_429_times
                else (self.ctx.population.faults.retry_after)
            )
            response = self._error(record, 429, 20429, "Too Many Requests")
            response.headers["Retry-After"] = _seconds(retry_after)
            return response
        # reset: drop the connection without a word, as a failing load balancer does.
        record.status, record.result = 0, "reset"
        self.ctx.log.append(record)
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError  # aiohttp then writes nothing on the aborted socket

    async def _created(
        self,
        request: web.Request,
        record: LogRecord,
        sid: str,
        body: dict[str, object],
        fault: Fault | None,
        behaviour: Behaviour,
    ) -> web.Response:
        record.sid, record.status = sid, 201
        record.result = "timeout" if fault == "timeout" else "accepted"
        self.ctx.log.append(record)
        if fault == "timeout":
            # The message *was* accepted — only the answer is late, past the client's timeout:
            # the ambiguous outcome a sender must reconcile instead of blindly resending.
            hang = (
                behaviour.hang_seconds
                if behaviour.timeout_times
                else (self.ctx.population.faults.hang_seconds)
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), hang)
        return _json(201, body)

    def _error(
        self, record: LogRecord | None, status: int, code: int, message: str
    ) -> web.Response:
        if record is not None:
            record.status, record.result = status, str(code)
            self.ctx.log.append(record)
        return _json(status, error_body(status, code, message))


async def _read_form(request: web.Request) -> tuple[MultiDict[str], bytes]:
    raw = await request.read()
    pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return MultiDict(pairs), raw


def _runtime_rules(template: str, form: MultiDict[str]) -> list[str]:
    """What Twilio enforces beyond its OpenAPI spec; each error starts with Twilio's code."""
    to = form.get("To")
    errors = []
    if template == MESSAGES:
        if not to:
            errors.append("21604 A 'To' phone number is required.")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            errors.append("21603 A 'From' or 'MessagingServiceSid' parameter is required.")
        if not form.get("Body") and not form.get("MediaUrl") and not form.get("ContentSid"):
            errors.append("21602 Message body is required.")
    elif template == CALLS:
        if not to:
            errors.append("21201 No 'To' number is specified")
        if not form.get("From"):
            errors.append("21213 Caller phone number is required")
        if not any(form.get(k) for k in ("Url", "Twiml", "ApplicationSid")):
            errors.append("21205 Url parameter is required.")
    if to and not E164.match(to):
        errors.append(f"21211 Invalid 'To' Phone Number: {to}")
    return errors


def _sms_refusal(behaviour: Behaviour) -> tuple[int, str] | None:
    if behaviour.line == "invalid":
        return 21211, "Invalid 'To' Phone Number: {to}"
    if behaviour.line == "landline":
        return 21614, "'To' number {to} is not a valid mobile number"
    if behaviour.unsubscribed:
        return 21610, "Attempt to send to unsubscribed recipient"
    return None


def _not_found(request: web.Request) -> str:
    return f"The requested resource {request.path} was not found"


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _json(status: int, body: dict[str, object]) -> web.Response:
    return web.json_response(body, status=status, headers={"Twilio-Request-Id": new_sid("RQ")})
