"""Inbound SMS (SPEC 4.3, 4.5): stored before it is interpreted, counted once per MessageSid,
matched to a contact, then understood as an acknowledgement, an answer or a report.

Unknown senders: the message is kept (operators see it among the reports) and gets no reply —
answering unknown numbers would tell strangers that this number belongs to the ward's relay and
costs a message per spam text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from relay.messages import answer_options
from relay.models import Alert, Contact, ContactPath, InboundMessage, Recipient
from relay.questions.catalog import AnswerError
from relay.questions.sms_answers import parse_sms_answers
from relay.replies import acks
from relay.replies import reply_texts as texts
from relay.replies.answers import asked, record_answers
from relay.replies.parsing import Reply, parse_reply

OPEN_STATES = ("dispatching", "active")
# A reply after the deadline closed the alert still counts (the report shows it as answered
# late): a leader who was out and answers 40 minutes later has still been reached. A day on,
# a bare "1" is more likely about something else.
LATE_ANSWER_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class InboundResult:
    inbound_id: int
    duplicate: bool
    interpretation: str  # ack | answer | answers | report | unknown_sender | empty
    alert_reference: str | None
    answer_label: str | None
    reply_text: str | None  # what to text back, None for nothing


def _contacts_for(session: Session, number: str) -> list[Contact]:
    return list(
        session.scalars(
            select(Contact)
            .join(ContactPath, ContactPath.contact_id == Contact.id)
            .where(ContactPath.address == number, ContactPath.kind == "mobile", Contact.active)
        )
    )


def _recipients(
    session: Session, contacts: list[Contact], reply: Reply, now: datetime
) -> tuple[Alert | None, list[Recipient]]:
    """The alert the reply is about: the one named by its reference code if the sender was
    asked in it, otherwise the sender's most recent open alert, otherwise their most recent
    alert if it closed at its deadline within the late-answer window (never a cancelled one)."""
    ids = [c.id for c in contacts]
    stmt = (
        select(Recipient, Alert)
        .join(Alert, Alert.id == Recipient.alert_id)
        .where(Recipient.contact_id.in_(ids))
        .order_by(Alert.sent_at.desc(), Alert.id.desc())
    )
    rows = session.execute(stmt.limit(200)).all()
    chosen: Alert | None = None
    if reply.reference:
        chosen = next((a for _, a in rows if a.reference == reply.reference), None)
    if chosen is None:
        chosen = next((a for _, a in rows if a.state in OPEN_STATES), None)
    if chosen is None:
        latest = next((a for _, a in rows if a.state != "cancelled"), None)
        if latest and latest.state == "closed" and now - latest.sent_at <= LATE_ANSWER_WINDOW:
            chosen = latest
    if chosen is None:
        return None, []
    return chosen, [r for r, a in rows if a.id == chosen.id]


def _without_reference(text: str, reference: str | None) -> str:
    if not reference:
        return text
    code = re.escape(reference.lower())
    return re.sub(rf"(?<![a-z0-9]){code}(?![a-z0-9])", " ", text, count=1)


def _answers(
    session: Session,
    alert: Alert,
    recipients: list[Recipient],
    inbound: InboundMessage,
    reply: Reply,
    language: str,
    now: datetime,
) -> InboundResult | None:
    """A reply with answers to the alert's questions (`1 2 0 3`, `避難者 45`; issue 16):
    stored and acknowledged, or, if any answer does not fit, nothing stored, the reply kept as
    a report for the ward and a one-line help texted back. None: not answers at all."""
    text = _without_reference(reply.text, reply.reference)
    by_recipient = [(r, asked(session, alert, r)) for r in recipients]
    parsed = [(r, parse_sms_answers(text, questions)) for r, questions in by_recipient]
    if not any(p.is_answer for _, p in parsed):
        return None
    problems = [problem for _, p in parsed for problem in p.problems]
    if problems or not any(p.values for _, p in parsed):
        inbound.interpretation = "report"
        help_line = texts.answer_help(alert, problems[0] if problems else "", language)
        return InboundResult(inbound.id, False, "report", alert.reference, None, help_line)
    count = 0
    try:
        with session.begin_nested():
            for recipient, p in parsed:
                if p.values:
                    record_answers(
                        session, alert, recipient, p.values, "sms_reply", now, inbound_id=inbound.id
                    )
                    count = max(count, len(p.values))
    except AnswerError as exc:  # a cancelled alert: nothing stored, the text kept for the ward
        inbound.interpretation = "report"
        help_line = texts.answer_help(alert, str(exc), language)
        return InboundResult(inbound.id, False, "report", alert.reference, None, help_line)
    inbound.interpretation = "answers"
    return InboundResult(
        inbound.id,
        False,
        "answers",
        alert.reference,
        None,
        texts.answers_recorded(alert, count, language),
    )


def receive_sms(session: Session, params: dict[str, str], now: datetime) -> InboundResult:
    """Store and interpret one inbound SMS; say what to text back."""
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    existing = session.scalars(
        select(InboundMessage).where(InboundMessage.provider_sid == sid)
    ).first()
    if existing is not None:
        return InboundResult(existing.id, True, existing.interpretation or "", None, None, None)
    inbound = InboundMessage(
        provider_sid=sid,
        channel="sms",
        from_address=params.get("From", ""),
        to_address=params.get("To", ""),
        body=params.get("Body", ""),
        payload=params,
        received_at=now,
    )
    try:
        with session.begin_nested():
            session.add(inbound)
    except IntegrityError:  # the same message delivered twice at the same moment
        return InboundResult(0, True, "", None, None, None)

    contacts = _contacts_for(session, inbound.from_address)
    if not contacts:
        inbound.interpretation = "unknown_sender"
        return InboundResult(inbound.id, False, "unknown_sender", None, None, None)
    inbound.contact_id = contacts[0].id
    reply = parse_reply(inbound.body)
    alert, recipients = _recipients(session, contacts, reply, now)
    inbound.alert_id = alert.id if alert else None
    language = contacts[0].language
    if alert is not None and recipients and alert.questions:
        answered = _answers(session, alert, recipients, inbound, reply, language, now)
        if answered is not None:
            return answered
    if reply.kind in ("ack", "answer") and alert is not None and recipients:
        options = {o.digit: o for o in answer_options(alert.template, language)}
        option = options.get(reply.digit or "")
        if option is not None:
            inbound.interpretation = reply.kind
            for recipient in recipients:
                acks.acknowledge(
                    session,
                    recipient,
                    "sms_reply",
                    option.code,
                    now,
                    text=inbound.body,
                    inbound_id=inbound.id,
                )
            return InboundResult(
                inbound.id,
                False,
                reply.kind,
                alert.reference,
                option.label,
                texts.confirmation(alert, option.label, language),
            )
    if reply.kind == "empty":
        inbound.interpretation = "empty"
        return InboundResult(
            inbound.id, False, "empty", None, None, texts.help_text(alert, language)
        )
    inbound.interpretation = "report"
    return InboundResult(
        inbound.id,
        False,
        "report",
        alert.reference if alert else None,
        None,
        texts.report_received(alert, language),
    )
