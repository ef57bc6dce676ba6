"""Acknowledgement links `/a/{token}` (SPEC 4.3). GET shows the alert and the answer buttons and
acknowledges nothing (mail scanners open links); only the button's POST acknowledges."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from relay.delivery.tracking import mark_reached
from relay.messages import MessageContext, MessageError, answer_options, render
from relay.models import Alert, Contact, InboundMessage, Organization, Recipient
from relay.questions.catalog import AnswerError
from relay.replies import acks
from relay.replies.answers import asked, latest_answers, record_answers
from relay.replies.links import LinkError, link_expired, read_token
from relay.web.console.throttle import SignInThrottle
from relay.web.twilio_webhooks import _sessions

router = APIRouter(include_in_schema=False)
_env = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parents[2] / "templates" / "web"),
    autoescape=select_autoescape(["html"]),
)

_TEXT = {
    "ja": {
        "Actual": "金沢区からの緊急情報",
        "Exercise": "【訓練】金沢区からの訓練情報",
        "Test": "【テスト】金沢区からのテスト送信",
        "done": "回答を受け付けました：{label}",
        "ref": "参照番号 {ref}",
        "reply": "SMSに番号を返信しても回答できます（例：「{ref} 1」）。",
        "questions": "状況の報告",
        "send": "報告を送る",
        "answered": "報告を受け付けました。変更はもう一度送ってください。",
        "required": "必須",
        "bad": "このリンクは使えません",
        "gone": "この連絡は取り消されました",
    },
    "ja-easy": {
        "Actual": "きんざわく からの きんきゅう じょうほう",
        "Exercise": "【訓練】くんれん です",
        "Test": "【テスト】テスト です",
        "done": "うけつけました：{label}",
        "ref": "ばんごう {ref}",
        "reply": "SMSに すうじを おくって こたえる ことも できます（れい：「{ref} 1」）。",
        "questions": "ようすを おしえて ください",
        "send": "おくる",
        "answered": "うけつけました。かえる ときは もう いちど おくって ください。",
        "required": "かならず",
        "bad": "この リンクは つかえません",
        "gone": "この れんらくは とりけされました",
    },
    "en": {
        "Actual": "Emergency information from Kanazawa Ward",
        "Exercise": "[DRILL] Kanazawa Ward drill",
        "Test": "[TEST] Kanazawa Ward test",
        "done": "Your answer was recorded: {label}",
        "ref": "Reference {ref}",
        "reply": 'You can also answer by replying to the SMS with the number (e.g. "{ref} 1").',
        "questions": "Situation report",
        "send": "Send report",
        "answered": "Report recorded. Send it again to change it.",
        "required": "required",
        "bad": "This link cannot be used",
        "gone": "This alert was cancelled",
    },
}


def _page(status_code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template("ack.html").render(**context), status_code=status_code)


def _error(reason: str, status_code: int) -> HTMLResponse:
    # Safe to show: LinkError reasons say only "not valid" or "expired".
    text = _TEXT["ja"]["bad"]
    return _page(status_code, title=text, error=f"{text}（{reason}）", language="ja")


# Bad tokens per client address (an IPv4 address or an IPv6 /64): a token's MAC is 40 bits
# (relay/replies/links.py), so an address that has sent 30 made-up tokens in 15 minutes is
# refused every link page (429) for the rest of the window — genuine ones too, or the answer
# would tell a guesser when it hit. A phone with its real link never sends bad ones; the cost is
# that one guesser behind a shared IPv4 address (a carrier's NAT) blocks the links of others
# behind it for up to 15 minutes; they can still answer by reply or by the call.
BAD_LINKS_PER_ADDRESS = 30


def link_throttle() -> SignInThrottle:
    return SignInThrottle(pair_limit=BAD_LINKS_PER_ADDRESS, address_limit=BAD_LINKS_PER_ADDRESS)


@dataclass(frozen=True)
class _Link:
    """A genuine, unexpired link: whose it is, the channel it came by, the page's language,
    and whether the page may say an SMS reply works too (the SMS has room for its link alone,
    issue 15)."""

    token: str
    recipient: Recipient
    alert: Alert
    channel: str
    language: str
    reply_works: bool


def _load(request: Request, session: Any, token: str) -> _Link | HTMLResponse:
    settings = request.app.state.settings
    throttle: SignInThrottle = request.app.state.link_throttle
    address = request.client.host if request.client else ""
    if throttle.blocked("link", address):
        return _error("too many invalid links from this address; try again later", 429)
    try:
        parsed = read_token(settings.secret_key, token)
    except LinkError as exc:
        throttle.failed("link", address)
        return _error(exc.reason, 404)
    recipient = session.get(Recipient, parsed.recipient_id)
    if recipient is None:
        throttle.failed("link", address)
        return _error("not found", 404)
    alert = session.get(Alert, recipient.alert_id)
    if link_expired(alert.sent_at, datetime.now(UTC)):
        return _error("this link has expired", 410)
    contact = session.get(Contact, recipient.contact_id)
    language = contact.language if contact else "ja"
    reply_works = parsed.channel == "sms" and settings.twilio_two_way_sms
    return _Link(token, recipient, alert, parsed.channel, language, reply_works)


def _gone(language: str) -> HTMLResponse:
    text = _TEXT.get(language, _TEXT["ja"])
    return _page(409, title=text["gone"], error=text["gone"], language=language)


def _render_alert(
    session: Any,
    link: _Link,
    done_label: str | None = None,
    *,
    answered: bool = False,
    problem: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    recipient, alert, language = link.recipient, link.alert, link.language
    text = _TEXT.get(language, _TEXT["ja"])
    options = answer_options(alert.template, language)
    label = done_label or next((o.label for o in options if o.code == recipient.ack_answer), "")
    return _page(
        status_code,
        title=text[alert.status],
        banner=text[alert.status],
        token=link.token,
        questions=_question_fields(session, alert, recipient, language),
        question_text=text,
        answered=answered,
        problem=problem,
        status=alert.status,
        headline=alert.headline,
        body=_full_text(session, alert, recipient, language),
        options=options,
        acknowledged=recipient.acknowledged_at is not None,
        done_text=text["done"].format(label=label),
        reference_text=text["ref"].format(ref=alert.reference),
        # The SMS has room for its link alone (issue 15): the page says that a reply works too.
        reply_text=text["reply"].format(ref=alert.reference) if link.reply_works else "",
        language=language,
    )


def _full_text(session: Any, alert: Alert, recipient: Recipient, language: str) -> str:
    """The message in full: the SMS is one segment (issue 15), so the page carries what the
    email says (every shelter, the detail, how to answer), rendered for this recipient without
    a link (they are on its page). The alert's description if that cannot be rendered."""
    contact = session.get(Contact, recipient.contact_id)
    org = session.get(Organization, recipient.organization_id)
    context = MessageContext(
        status=alert.status,
        sent_at=alert.sent_at,
        reference=alert.reference,
        ack_url=None,
        two_way_sms=False,
        org_name=org.name if org else "",
        contact_name=contact.name if contact else "",
    )
    try:
        return render(alert.template, "email", language, alert.variables, context).text
    except MessageError:  # an operator template since removed, variables since renamed
        return alert.description


def _question_fields(
    session: Any, alert: Alert, recipient: Recipient, language: str
) -> list[dict[str, Any]]:
    """The form's fields: this organization's questions with its latest answers filled in."""
    questions = asked(session, alert, recipient)
    if not questions:
        return []
    latest = latest_answers(session, alert.id).get(recipient.organization_id, {})
    fields = []
    for q in questions:
        answer = latest.get(q.id)
        current = (
            "" if answer is None else answer.number if answer.number is not None else answer.text
        )
        fields.append(
            {
                "id": q.id,
                "label": q.label(language),
                "kind": q.kind,
                "required": q.required,
                "options": [(o.number, o.label(language)) for o in q.choices()],
                "min": q.minimum,
                "max": q.maximum,
                "unit": q.units.get(language) or q.units.get("ja", ""),
                "max_length": q.max_length,
                "value": current,
            }
        )
    return fields


@router.get("/a/{token}", response_class=HTMLResponse)
def show(request: Request, token: str) -> HTMLResponse:
    with _sessions(request).begin() as session:
        loaded = _load(request, session, token)
        if isinstance(loaded, HTMLResponse):
            return loaded
        if loaded.channel == "sms":
            # A phone opening the SMS link is the person; email links are opened by scanners,
            # so for email only the button counts.
            mark_reached(session, loaded.recipient.id, datetime.now(UTC), loaded.channel)
        return _render_alert(session, loaded)


@router.post("/a/{token}", response_class=HTMLResponse)
def answer(request: Request, token: str, answer: str = Form("1")) -> HTMLResponse:
    now = datetime.now(UTC)
    with _sessions(request).begin() as session:
        loaded = _load(request, session, token)
        if isinstance(loaded, HTMLResponse):
            return loaded
        recipient, alert, channel, language = (
            loaded.recipient,
            loaded.alert,
            loaded.channel,
            loaded.language,
        )
        if alert.state == "cancelled":
            return _gone(language)
        option = next(
            (o for o in answer_options(alert.template, language) if o.digit == answer), None
        )
        if option is None:
            return _error("unknown answer", 422)
        # Kept as an inbound event like an SMS or a keypress, so an answer given after another
        # method already acknowledged is still on record.
        inbound = InboundMessage(
            provider_sid=f"link:{recipient.id}:{uuid.uuid4().hex}",
            channel="link",
            body=option.digit,
            contact_id=recipient.contact_id,
            alert_id=alert.id,
            interpretation="ack" if recipient.acknowledged_at is None else "ack_again",
            payload={"channel": channel, "answer": option.code},
            received_at=now,
        )
        session.add(inbound)
        session.flush()
        acks.acknowledge(
            session, recipient, "link", option.code, now, channel=channel, inbound_id=inbound.id
        )
        return _render_alert(session, loaded, option.label)


_MAX_FIELDS = 20


@router.post("/a/{token}/answers", response_class=HTMLResponse)
async def answer_questions(request: Request, token: str) -> HTMLResponse:
    """The situation report form (issue 16): POST only; answering acknowledges; sending it
    again revises (every version is kept). A value a question cannot take: 422, nothing kept."""
    form = await request.form()
    fields = [(k, v) for k, v in form.multi_items() if k.startswith("q_")]
    if len(fields) > _MAX_FIELDS or not all(isinstance(v, str) for _, v in fields):
        return _error("malformed form", 422)
    values = {k[2:]: str(v) for k, v in fields}
    return await run_in_threadpool(_record_form, request, token, values)


def _record_form(request: Request, token: str, values: dict[str, str]) -> HTMLResponse:
    now = datetime.now(UTC)
    with _sessions(request).begin() as session:
        loaded = _load(request, session, token)
        if isinstance(loaded, HTMLResponse):
            return loaded
        if loaded.alert.state == "cancelled":
            return _gone(loaded.language)
        try:
            with session.begin_nested():
                record_answers(
                    session, loaded.alert, loaded.recipient, values, "link", now,
                    channel=loaded.channel,
                )  # fmt: skip
        except AnswerError as exc:
            return _render_alert(session, loaded, problem=str(exc), status_code=422)
        return _render_alert(session, loaded, answered=True)
