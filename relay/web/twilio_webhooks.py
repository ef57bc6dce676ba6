"""Webhooks Twilio calls (SPEC 5.3). Every request is signature-checked first: a request that
fails the check gets 403 and changes nothing. Handlers answer fast and are idempotent, since
Twilio retries."""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlalchemy.exc import IntegrityError

from channels.masking import mask_phone
from channels.twilio_errors import call_outcome, message_outcome
from channels.twilio_signature import verify_twilio_signature
from channels.twilio_voice import (
    call_twiml,
    hangup_twiml,
    messaging_twiml,
    question_twiml,
    say_twiml,
)
from relay.config import Settings
from relay.db import session_factory
from relay.delivery.tracking import ProviderEvent, apply_event
from relay.messages import answer_options
from relay.models import Alert, Delivery, InboundMessage, Recipient
from relay.questions.catalog import AnswerError, Question
from relay.replies import acks, inbound, voice_script
from relay.replies.answers import asked, record_answers
from relay.replies.parsing import parse_reply
from relay.web import status_ingest
from relay.web.metrics import WEBHOOK_REJECTIONS

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks/twilio", include_in_schema=False)

XML = "application/xml"


class TwilioRequest:
    """A verified Twilio request: its form fields and the delivery id from our callback URL."""

    def __init__(self, params: dict[str, str], delivery_hint: int | None) -> None:
        self.params = params
        self.delivery_hint = delivery_hint

    def get(self, key: str) -> str | None:
        value = self.params.get(key)
        return value if value else None


async def verified(request: Request) -> TwilioRequest:
    settings: Settings = request.app.state.settings
    try:
        form = await request.form()
    except Exception:
        raise HTTPException(403, "invalid Twilio signature") from None
    pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    # Twilio signs the URL it called, which is our public URL, not what the proxy passed on.
    url = settings.public_url + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    signature = request.headers.get("X-Twilio-Signature")
    if not verify_twilio_signature(url, pairs, signature, settings.twilio_auth_tokens):
        log.warning("twilio webhook %s: bad or missing signature", request.url.path)
        WEBHOOK_REJECTIONS[request.url.path] += 1
        raise HTTPException(403, "invalid Twilio signature")
    params = dict(pairs)
    if params.get("AccountSid") != settings.twilio_account_sid:
        raise HTTPException(403, "unknown Twilio account")
    hint = request.query_params.get("d") or ""
    # Our own ids: ASCII digits that fit a BIGINT; anything else is no hint at all.
    usable = hint.isascii() and hint.isdigit() and len(hint) <= 18
    return TwilioRequest(params, int(hint) if usable else None)


Verified = Annotated[TwilioRequest, Depends(verified)]


def _sessions(request: Request):  # type: ignore[no-untyped-def]
    return session_factory(request.app.state.settings.database_url)


@router.post("/status")
async def message_status(request: Request, tw: Verified) -> Response:
    status = tw.get("MessageStatus") or tw.get("SmsStatus") or ""
    event = ProviderEvent(
        kind="sms_status",
        provider_id=tw.get("MessageSid"),
        delivery_hint=tw.delivery_hint,
        status=status,
        outcome=message_outcome(status),
        error_code=tw.get("ErrorCode"),
        payload=tw.params,
    )
    return await _store_status(request, event, "status callback for unknown message")


@router.post("/voice/status")
async def call_status(request: Request, tw: Verified) -> Response:
    status = tw.get("CallStatus") or ""
    answered_by = tw.get("AnsweredBy")
    event = ProviderEvent(
        kind="call_status",
        provider_id=tw.get("CallSid"),
        delivery_hint=tw.delivery_hint,
        status=f"{status}/{answered_by}" if answered_by else status,
        outcome=call_outcome(status, answered_by),
        error_code=tw.get("ErrorCode"),
        payload=tw.params,
    )
    return await _store_status(request, event, "call status for unknown call")


async def _store_status(request: Request, event: ProviderEvent, unknown: str) -> Response:
    """204 once the event is stored, with whatever other callbacks are waiting, in one
    transaction (status_ingest.py). Unknown ones are stored too, and logged."""
    if await status_ingest.store(request.app, event) is None:
        hint = {"delivery_id": event.delivery_hint}
        log.info("%s %s (%s)", unknown, event.provider_id, event.status, extra=hint)
    return Response(status_code=204)


def _call_context(session, tw: TwilioRequest) -> tuple[Delivery, Alert, Recipient]:  # type: ignore[no-untyped-def]
    delivery = session.get(Delivery, tw.delivery_hint) if tw.delivery_hint else None
    if delivery is None or delivery.channel != "voice":
        raise HTTPException(404, "unknown call")
    return (
        delivery,
        session.get(Alert, delivery.alert_id),
        session.get(Recipient, delivery.recipient_id),
    )


def _menu_twiml(request: Request, delivery: Delivery, alert: Alert) -> str:
    settings: Settings = request.app.state.settings
    options = answer_options(alert.template, delivery.language)
    speech = bool(alert.escalation.get("speech_answers", True))
    return call_twiml(
        delivery.body,
        language=voice_script.speech_language(delivery.language),
        gather_action=f"{settings.public_url}/webhooks/twilio/voice/gather?d={delivery.id}",
        prompt=voice_script.menu(options, delivery.language, speech=speech),
        no_input=voice_script.no_input(delivery.language),
        speech_hints=voice_script.speech_hints(delivery.language) if speech else (),
    )


@router.post("/voice/twiml")
def voice_twiml(request: Request, tw: Verified) -> Response:
    """The call was answered: speak the message twice, then ask for a key. An answering
    machine hears nothing and counts as not reached (the cascade moves on at once)."""
    answered_by = tw.get("AnsweredBy")
    with _sessions(request).begin() as session:
        delivery, alert, _ = _call_context(session, tw)
        outcome = call_outcome("in-progress", answered_by)
        apply_event(
            session,
            ProviderEvent(
                "call_answer",
                tw.get("CallSid"),
                delivery.id,
                f"in-progress/{answered_by or ''}",
                outcome,
                None,
                tw.params,
            ),
            datetime.now(UTC),
        )
        if outcome is not None and outcome.value == "machine":
            return Response(hangup_twiml(), media_type=XML)
        return Response(_menu_twiml(request, delivery, alert), media_type=XML)


def _spoken_digit(speech: str, digits: Collection[str]) -> str | None:
    """The option a spoken answer names: はい / 了解 / 確認しました are the acknowledgement
    ("1"), a spoken number is that option; anything else is not understood."""
    reply = parse_reply(speech, answer_digits=digits)
    return reply.digit if reply.kind in ("ack", "answer") else None


@router.post("/voice/gather")
def voice_gather(request: Request, tw: Verified) -> Response:
    digits = (tw.get("Digits") or "").strip()
    # Twilio posts SpeechResult instead of Digits when the person answered by voice.
    speech = "" if digits else (tw.get("SpeechResult") or "").strip()[:500]
    now = datetime.now(UTC)
    with _sessions(request).begin() as session:
        delivery, alert, recipient = _call_context(session, tw)
        language = delivery.language
        if digits == voice_script.REPEAT_KEY:
            return Response(_menu_twiml(request, delivery, alert), media_type=XML)
        options = {o.digit: o for o in answer_options(alert.template, language)}
        if speech:
            chosen = options.get(_spoken_digit(speech, options) or "")
            method, body = "voice_speech", speech
            # Twilio retries a webhook with the same SpeechResult: one row per call and answer.
            sid = f"{tw.get('CallSid')}:speech:{speech}"[:200]
        else:
            chosen = options.get(digits[:1])
            method, body, sid = "voice_key", digits, f"{tw.get('CallSid')}:{digits}"
        inbound = InboundMessage(
            provider_sid=sid,
            channel=method,
            from_address=delivery.address,
            to_address=tw.get("From") or "",
            body=body,
            contact_id=recipient.contact_id,
            alert_id=alert.id,
            interpretation="ack" if chosen else "unknown",
            payload=tw.params,
            received_at=now,
        )
        inbound_id: int | None = None
        try:
            with session.begin_nested():
                session.add(inbound)
            inbound_id = inbound.id
        except IntegrityError:
            pass  # the same keypress delivered twice: counted once
        if chosen is None:
            return Response(_menu_twiml(request, delivery, alert), media_type=XML)
        if alert.state not in ("cancelled",):
            acks.acknowledge(
                session,
                recipient,
                method,
                chosen.code,
                now,
                inbound_id=inbound_id,
            )
        log.info(
            "%s %s from %s for alert %s",
            "spoken answer" if speech else "keypress",
            chosen.code,
            mask_phone(delivery.address),
            alert.reference,
        )
        text = voice_script.confirmation(chosen.label, language)
        questions = _voice_questions(session, alert, recipient)
        if questions:  # the situation report, by keypad (issue 16)
            before = text + voice_script.report_intro(language)
            twiml = _question_twiml(request, delivery, questions, 0, before)
            return Response(twiml, media_type=XML)
        return Response(say_twiml(text, voice_script.speech_language(language)), media_type=XML)


def _voice_questions(session: Any, alert: Alert, recipient: Recipient) -> tuple[Question, ...]:
    """The questions a call asks: the required ones that take a key (choice, yes/no, number);
    free text and the optional ones are for the link. None for a cancelled alert."""
    if alert.state == "cancelled":
        return ()
    return tuple(q for q in asked(session, alert, recipient) if q.required and q.kind != "text")


def _question_twiml(
    request: Request, delivery: Delivery, questions: tuple[Question, ...], index: int, before: str
) -> str:
    settings: Settings = request.app.state.settings
    language = delivery.language
    return question_twiml(
        before,
        voice_script.question_prompt(questions[index], language),
        gather_action=(
            f"{settings.public_url}/webhooks/twilio/voice/question?d={delivery.id}&q={index}"
        ),
        number=questions[index].kind == "number",
        language=voice_script.speech_language(language),
        no_input=voice_script.no_input(language),
    )


@router.post("/voice/question")
def voice_question(request: Request, tw: Verified) -> Response:
    """One keypad answer of the situation report: checked, stored (answering acknowledges),
    said back, then the next question; a key that does not fit asks the same question again.
    Twilio retrying the webhook stores the same answer once more: harmless, the latest
    counts."""
    raw = request.query_params.get("q") or ""
    index = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 2 else -1
    digits = (tw.get("Digits") or "").strip()[:8]
    now = datetime.now(UTC)
    with _sessions(request).begin() as session:
        delivery, alert, recipient = _call_context(session, tw)
        language = delivery.language
        questions = _voice_questions(session, alert, recipient)
        if not 0 <= index < len(questions):
            return Response(hangup_twiml(), media_type=XML)
        question = questions[index]
        try:
            value = question.check(digits)
        except AnswerError:
            twiml = _question_twiml(
                request, delivery, questions, index, voice_script.again(language)
            )
            return Response(twiml, media_type=XML)
        record_answers(session, alert, recipient, {question.id: value}, "voice_key", now)
        said = voice_script.heard(question, value, language)
        if index + 1 < len(questions):
            twiml = _question_twiml(request, delivery, questions, index + 1, said)
            return Response(twiml, media_type=XML)
        done = said + voice_script.report_done(language)
        return Response(say_twiml(done, voice_script.speech_language(language)), media_type=XML)


@router.post("/sms")
def inbound_sms(request: Request, tw: Verified) -> Response:
    """An SMS from a recipient: stored, then understood; the reply names the alert."""
    with _sessions(request).begin() as session:
        result = inbound.receive_sms(session, tw.params, datetime.now(UTC))
    if not result.duplicate:
        log.info(
            "inbound SMS from %s: %s %s",
            mask_phone(tw.get("From") or ""),
            result.interpretation,
            result.alert_reference or "",
        )
    return Response(messaging_twiml(result.reply_text), media_type=XML)
