"""An outbound call's life: ringing, pickup, running the relay's TwiML, keypresses, hang-up."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin

from .behaviour import Behaviour
from .callbacks import Party
from .context import Context
from .log import Kind
from .resources import API_VERSION, Call, rfc2822
from .twiml import TwimlError, Verb, gather_inputs, parse_twiml, spoken_seconds

MAX_DOCUMENTS = 20  # Redirect/Gather loops beyond this end the call (Twilio caps them too)
GATHER_TIMEOUT = 5.0  # Twilio's default <Gather timeout>
_PROGRESS_STATUS = {"initiated": "initiated", "ringing": "ringing", "answered": "in-progress"}


def start(ctx: Context, call: Call, behaviour: Behaviour) -> None:
    async def run() -> None:
        await _run_call(ctx, call, behaviour)

    ctx.scheduler.now(run)


async def _run_call(ctx: Context, call: Call, behaviour: Behaviour) -> None:
    outcome = "no-answer" if behaviour.line == "unreachable" else behaviour.call_outcome
    await _progress(ctx, call, "initiated")
    if outcome == "failed":
        await _final(ctx, call, "failed")
        return
    await ctx.scheduler.sleep(behaviour.ring_delay)
    if outcome == "busy":
        await _final(ctx, call, "busy")
        return
    await _progress(ctx, call, "ringing")
    await ctx.scheduler.sleep(behaviour.answer_delay)
    if outcome == "no-answer":
        await _final(ctx, call, "no-answer")
        return
    if call.machine_detection:
        call.answered_by = "machine_start" if outcome == "machine" else "human"
    call.started = datetime.now(UTC)
    await _progress(ctx, call, "answered")
    talk = _Conversation(ctx, call, behaviour, human=outcome == "human")
    await talk.run()
    call.duration = math.ceil(talk.elapsed)
    await _final(ctx, call, "completed")


@dataclass
class _Next:
    """The document to run next: fetched from `url`, with `extra` fields (e.g. Digits)."""

    url: str
    method: str
    extra: dict[str, str]
    answers: dict[str, str] = field(default_factory=dict)  # what a key meant, for the log


class _Conversation:
    """Runs TwiML documents until the call ends; `elapsed` counts simulated seconds."""

    def __init__(self, ctx: Context, call: Call, behaviour: Behaviour, *, human: bool) -> None:
        self.ctx, self.call, self.behaviour = ctx, call, behaviour
        # A machine presses nothing; a person presses one entry per Gather reached. The last
        # entries may answer situation-report questions (digit_answers): noted in the log.
        entries = (behaviour.digits or "").split() if human else []
        meant = list(behaviour.digit_answers or [])[-len(entries) :] if entries else []
        self.keys = deque(entries)
        self.meanings: deque[str | None] = deque([None] * (len(entries) - len(meant)) + list(meant))
        self.speech = behaviour.speech if human else None
        self.limit = behaviour.hang_up_after if human else None
        self.elapsed = 0.0

    async def run(self) -> None:
        if self.call.twiml is not None:
            verbs, doc_url = self._inline(self.call.twiml), self.call.url or ""
        else:
            doc_url = self.call.url or ""
            verbs = await self._fetch(_Next(doc_url, self.call.method, {}))
        for _ in range(MAX_DOCUMENTS):
            if verbs is None:
                return
            follow = await self._execute(verbs, doc_url)
            if follow is None:
                return  # end of document, <Hangup>, or the recipient hung up
            doc_url = follow.url
            verbs = await self._fetch(follow)

    async def _execute(self, verbs: list[Verb], doc_url: str) -> _Next | None:
        for verb in verbs:
            if verb.name in ("Say", "Play", "Pause"):
                if not await self._spend(spoken_seconds(verb)):
                    return None
            elif verb.name == "Gather":
                follow, stop = await self._gather(verb, doc_url)
                if follow is not None or stop:
                    return follow
            elif verb.name == "Redirect":
                return _Next(urljoin(doc_url, verb.text), verb.attr("method", "POST"), {})
            elif verb.name in ("Hangup", "Reject"):
                return None
        return None

    async def _gather(self, verb: Verb, doc_url: str) -> tuple[_Next | None, bool]:
        """(next document, call over). Without a keypress the call moves on to the next verb."""
        action = urljoin(doc_url, verb.attr("action")) if verb.attr("action") else doc_url
        method = verb.attr("method", "POST")
        if self.speech and "speech" in gather_inputs(verb):
            # Says it while (or just after) the prompt plays; Twilio posts the transcript.
            said, self.speech = self.speech, None
            if not await self._spend(self.behaviour.digits_delay):
                return None, True
            if not action:
                return None, True
            return _Next(action, method, {"SpeechResult": said, "Confidence": "0.92"}), False
        if self.keys:
            # The recipient presses while the prompt plays (barge-in), after digits_delay.
            if not await self._spend(self.behaviour.digits_delay):
                return None, True
            digits, meant = self.keys.popleft(), self.meanings.popleft()
            if not action:
                return None, True  # inline TwiML without an action: nowhere to report
            answers = {meant: digits} if meant else {}
            return _Next(action, method, {"Digits": digits, "FinishedOnKey": ""}, answers), False
        prompt = sum(spoken_seconds(child) for child in verb.children)
        timeout = float(verb.attr("timeout", str(GATHER_TIMEOUT)) or GATHER_TIMEOUT)
        if not await self._spend(prompt + timeout):
            return None, True
        if verb.attr("actionOnEmptyResult") == "true" and action:
            return _Next(action, method, {"Digits": ""}), False
        return None, False

    async def _spend(self, seconds: float) -> bool:
        """Let `seconds` of the call pass; False if the recipient hung up meanwhile."""
        if self.limit is not None and self.elapsed + seconds >= self.limit:
            await self.ctx.scheduler.sleep(max(0.0, self.limit - self.elapsed))
            self.elapsed = self.limit
            return False
        await self.ctx.scheduler.sleep(seconds)
        self.elapsed += seconds
        return True

    async def _fetch(self, follow: _Next) -> list[Verb] | None:
        params = _call_params(self.call, "in-progress") | follow.extra
        answered = "Digits" in follow.extra or "SpeechResult" in follow.extra
        kind: Kind = "gather" if answered else "twiml_fetch"
        party = Party(
            to=self.call.to, from_=self.call.from_, sid=self.call.sid, answers=follow.answers
        )
        # No retries: Twilio does not retry a TwiML fetch (it would try a FallbackUrl).
        reply = await self.ctx.courier.signed(
            kind, follow.url, params, party, method=follow.method, retry=False
        )
        if reply.status != 200:
            return None  # Twilio: "an application error has occurred", then hangs up
        try:
            return parse_twiml(reply.text)
        except TwimlError as exc:
            if reply.record is not None:
                reply.record.result = f"invalid TwiML: {exc}"
            return None

    def _inline(self, document: str) -> list[Verb] | None:
        try:
            return parse_twiml(document)
        except TwimlError:
            return None  # already refused at the API (21205-like); nothing to play


def _call_params(call: Call, status: str) -> dict[str, str]:
    params = {
        "CallSid": call.sid,
        "AccountSid": call.account_sid,
        "From": call.from_,
        "To": call.to,
        "Caller": call.from_,
        "Called": call.to,
        "CallStatus": status,
        "Direction": "outbound-api",
        "ApiVersion": API_VERSION,
    }
    if call.machine_detection and call.answered_by:
        params["AnsweredBy"] = call.answered_by
    return params


async def _progress(ctx: Context, call: Call, event: str) -> None:
    call.status = _PROGRESS_STATUS[event]
    call.updated = datetime.now(UTC)
    if event in call.events:
        await _status_callback(ctx, call)


async def _final(ctx: Context, call: Call, status: str) -> None:
    """The final status callback, sent whatever events were asked for."""
    call.status = status
    call.ended = call.updated = datetime.now(UTC)
    if call.duration is None:
        call.duration = 0
    await _status_callback(ctx, call, final=True)


async def _status_callback(ctx: Context, call: Call, *, final: bool = False) -> None:
    if not call.status_callback:
        return
    params = _call_params(call, call.status) | {
        "Timestamp": rfc2822(),
        "SequenceNumber": str(call.sequence),
        "CallbackSource": "call-progress-events",
    }
    if final:
        params["CallDuration"] = str(call.duration or 0)
    call.sequence += 1
    await ctx.courier.signed(
        "status_callback",
        call.status_callback,
        params,
        Party(to=call.to, from_=call.from_, sid=call.sid),
        method=call.status_callback_method,
    )
