"""Acknowledgement links `/a/{token}` (SPEC 4.3). GET shows the alert and the answer buttons and
acknowledges nothing (mail scanners open links); only the button's POST acknowledges."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from relay.delivery.tracking import mark_reached
from relay.messages import answer_options
from relay.models import Alert, Contact, Delivery, InboundMessage, Recipient
from relay.replies import acks
from relay.replies.links import LinkError, read_token
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
        "bad": "このリンクは使えません",
        "gone": "この連絡は取り消されました",
    },
    "ja-easy": {
        "Actual": "きんざわく からの きんきゅう じょうほう",
        "Exercise": "【訓練】くんれん です",
        "Test": "【テスト】テスト です",
        "done": "うけつけました：{label}",
        "ref": "ばんごう {ref}",
        "bad": "この リンクは つかえません",
        "gone": "この れんらくは とりけされました",
    },
    "en": {
        "Actual": "Emergency information from Kanazawa Ward",
        "Exercise": "[DRILL] Kanazawa Ward drill",
        "Test": "[TEST] Kanazawa Ward test",
        "done": "Your answer was recorded: {label}",
        "ref": "Reference {ref}",
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


def _load(
    request: Request, session: Any, token: str
) -> tuple[Recipient, Alert, str, str] | HTMLResponse:
    settings = request.app.state.settings
    try:
        parsed = read_token(settings.secret_key, token)
    except LinkError as exc:
        return _error(exc.reason, 410 if "expired" in exc.reason else 404)
    recipient = session.get(Recipient, parsed.recipient_id)
    if recipient is None:
        return _error("not found", 404)
    alert = session.get(Alert, recipient.alert_id)
    contact = session.get(Contact, recipient.contact_id)
    return recipient, alert, parsed.channel, contact.language if contact else "ja"


def _render_alert(
    session: Any,
    recipient: Recipient,
    alert: Alert,
    channel: str,
    language: str,
    done_label: str | None = None,
) -> HTMLResponse:
    text = _TEXT.get(language, _TEXT["ja"])
    delivery = session.scalars(
        select(Delivery).where(Delivery.recipient_id == recipient.id, Delivery.channel == channel)
    ).first()
    options = answer_options(alert.template, language)
    label = done_label or next((o.label for o in options if o.code == recipient.ack_answer), "")
    return _page(
        title=text[alert.status],
        banner=text[alert.status],
        status=alert.status,
        headline=alert.headline,
        body=delivery.body if delivery else alert.description,
        options=options,
        acknowledged=recipient.acknowledged_at is not None,
        done_text=text["done"].format(label=label),
        reference_text=text["ref"].format(ref=alert.reference),
        language=language,
    )


@router.get("/a/{token}", response_class=HTMLResponse)
def show(request: Request, token: str) -> HTMLResponse:
    with _sessions(request).begin() as session:
        loaded = _load(request, session, token)
        if isinstance(loaded, HTMLResponse):
            return loaded
        recipient, alert, channel, language = loaded
        if channel == "sms":
            # A phone opening the SMS link is the person; email links are opened by scanners,
            # so for email only the button counts.
            mark_reached(session, recipient.id, datetime.now(UTC), channel)
        return _render_alert(session, recipient, alert, channel, language)


@router.post("/a/{token}", response_class=HTMLResponse)
def answer(request: Request, token: str, answer: str = Form("1")) -> HTMLResponse:
    now = datetime.now(UTC)
    with _sessions(request).begin() as session:
        loaded = _load(request, session, token)
        if isinstance(loaded, HTMLResponse):
            return loaded
        recipient, alert, channel, language = loaded
        if alert.state == "cancelled":
            text = _TEXT.get(language, _TEXT["ja"])
            return _page(409, title=text["gone"], error=text["gone"], language=language)
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
        return _render_alert(session, recipient, alert, channel, language, option.label)
