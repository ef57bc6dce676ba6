"""Reminders (issue 16): an organization that acknowledged an alert but has not answered its
required questions is reminded, `remind_after` after its acknowledgement (and once more as
long again after that, if the alert asks for two), on the channel it answered by — the SMS
for an SMS reply, a link opened from the SMS, a keypress or a call; email for an email link.
The reminder carries the same link as the alert (the form is there), starts with the alert's
marker, and is one segment in Japanese.

Timing lives in the database like the cascade's: each scheduler tick looks at the acknowledged
recipients of active alerts that ask questions, counts the reminders already sent (SMS or
email deliveries after the first attempt), and queues the next one when it is due. A contact
with no SMS or email path (a landline only) is not reminded: the ward sees it among those who
have not reported.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relay.config import Settings
from relay.delivery.states import QUEUED
from relay.messages import MARKERS, sms_segments
from relay.models import Acknowledgement, Alert, Delivery, Recipient
from relay.questions.catalog import questionnaire
from relay.replies.answers import unreported
from relay.replies.escalation import queue_sends
from relay.replies.links import link_url, make_token

REMIND_AFTER = timedelta(minutes=10)
REMINDERS = 1  # how many, at most 2
_TEXT = {
    "ja": "{label}の送信をお願いします",
    "en": "Please send your {label}:",
    "ja-easy": "{label}を おくって ください",
}
_SUBJECT = {
    "ja": "{label}のお願い",
    "en": "Please send your {label}",
    "ja-easy": "{label}の おねがい",
}


def _text(alert: Alert, language: str, link: str) -> tuple[str, str]:
    """(subject, body) of a reminder in `language`."""
    label = questionnaire(alert.questions[0]).label(language)
    if language == "en":
        label = label[0].lower() + label[1:]
    marker = MARKERS[alert.status][language]
    body = f"{marker}{_TEXT[language].format(label=label)}\n{link}"
    return f"{marker}{_SUBJECT[language].format(label=label)}", body


def tick(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """Queue every reminder that is due; return how many."""
    now = now or datetime.now(UTC)
    alerts = [
        a
        for a in session.scalars(select(Alert).where(Alert.state == "active"))
        if a.questions and a.escalation.get("reminders", 0) > 0
    ]
    queued: list[Delivery] = []
    for alert in alerts:
        queued += _remind(session, settings, alert, now)
    session.flush()
    by_alert: dict[int, list[Delivery]] = {}
    for delivery in queued:
        by_alert.setdefault(delivery.alert_id, []).append(delivery)
    for alert in alerts:
        if alert.id in by_alert:
            queue_sends(session, alert, by_alert[alert.id])
    return len(queued)


def _remind(session: Session, settings: Settings, alert: Alert, now: datetime) -> list[Delivery]:
    after = timedelta(seconds=alert.escalation.get("remind_after_s", REMIND_AFTER.total_seconds()))
    most = min(int(alert.escalation.get("reminders", 0)), 2)
    first_ack = (
        select(func.min(Recipient.acknowledged_at))
        .where(Recipient.alert_id == alert.id, Recipient.acknowledged_at.is_not(None))
        .group_by(Recipient.organization_id)
    )
    rows = session.execute(
        select(Recipient, Acknowledgement.channel)
        .join(Acknowledgement, Acknowledgement.recipient_id == Recipient.id)
        .where(
            Recipient.alert_id == alert.id,
            Recipient.acknowledged_at.in_(first_ack),  # the organization's first to answer
            Recipient.acknowledged_at <= now - after,
        )
        .order_by(Recipient.position)
    ).all()
    behind = {org.id for org, _ in unreported(session, alert)}
    seen: set[int] = set()
    sends = []
    for recipient, ack_channel in rows:
        if recipient.organization_id in seen:
            continue
        seen.add(recipient.organization_id)
        if recipient.organization_id not in behind:
            continue
        mine = list(session.scalars(select(Delivery).where(Delivery.recipient_id == recipient.id)))
        sent = [d for d in mine if d.channel in ("sms", "email") and d.attempt > 1]
        assert recipient.acknowledged_at is not None
        if len(sent) >= most or now < recipient.acknowledged_at + after * (len(sent) + 1):
            continue
        first = {d.channel: d for d in mine if d.attempt == 1}
        channel = "email" if ack_channel == "email" and "email" in first else "sms"
        if channel not in first:
            channel = "email" if "email" in first else ""
        if not channel:
            continue  # no SMS or email path: listed as not reported
        sends.append(_reminder(session, settings, alert, recipient, first[channel], now))
    return sends


def _reminder(
    session: Session,
    settings: Settings,
    alert: Alert,
    recipient: Recipient,
    original: Delivery,
    now: datetime,
) -> Delivery:
    last = session.scalar(
        select(func.max(Delivery.attempt)).where(
            Delivery.recipient_id == recipient.id, Delivery.channel == original.channel
        )
    )
    attempt = (last or 1) + 1
    token = make_token(settings.secret_key, recipient.id, original.channel)
    link = link_url(settings.public_url, token)
    subject, body = _text(alert, original.language, link)
    delivery = Delivery(
        alert_id=alert.id, recipient_id=recipient.id, channel=original.channel, attempt=attempt,
        position=original.position, address=original.address, language=original.language,
        subject=subject if original.channel == "email" else None, body=body,
        segments=sms_segments(body) if original.channel == "sms" else 0, state=QUEUED,
        due_at=now, created_at=now,
    )  # fmt: skip
    session.add(delivery)
    return delivery
