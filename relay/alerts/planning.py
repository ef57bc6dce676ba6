"""Planning an issued alert a slice at a time, each slice's sends queued as it lands.

Issuing commits the alert and its whole audience — every recipient, in coverage-first order
(`Recipient.position`) — with the first slice planned and its sends in the outbox; each later
slice is planned by a `dispatch_alert` task that the slice before queued in its own
transaction. So sending starts as soon as the issue commits, for 100,000 recipients as for 10,
and a crash during planning resumes at the first slice not committed: nothing lost, nothing
planned twice. `Alert.planned_recipients` is how far planning has come; a slice is planned only
while the alert is `dispatching` (a cancel stops it) and only from where planning stands (a task
delivered twice plans nothing the second time). The alert becomes `active` with its last slice,
and only then do its escalation timers run (relay/replies/escalation.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import exists, insert, select
from sqlalchemy.orm import Session

from relay.config import Settings
from relay.delivery import outbox
from relay.delivery.dispatch import queue_batches
from relay.delivery.states import PLANNED, QUEUED
from relay.directory.audience import Audience, Target, resolve
from relay.messages import Channel, MessageContext, RenderedMessage, render
from relay.models import Alert, Delivery, Recipient
from relay.replies.escalation import first_step
from relay.replies.links import link_url, make_token

CHANNELS: tuple[str, ...] = ("sms", "voice", "email")
# Recipients planned per transaction: bounds the memory a large alert takes and how long a
# slice holds the alert's row lock (~0.5 s for 2,000 recipients, ops/bench s5).
PLAN_SLICE = 2_000


def paths(target: Target) -> dict[str, str]:
    """Where each channel reaches this contact: SMS only to a mobile; calls to the mobile,
    else the landline (or IP phone); email to the address."""
    by_kind = target.paths
    found: dict[str, str] = {}
    mobile = by_kind.get("mobile")
    if mobile is not None and mobile[1] == "mobile":
        found["sms"] = mobile[0]
    voice = mobile or by_kind.get("landline")
    if voice is not None:
        found["voice"] = voice[0]
    if "email" in by_kind:
        found["email"] = by_kind["email"][0]
    return found


def render_for(
    settings: Settings, alert: Alert, target: Target, recipient_id: int, channel: str
) -> RenderedMessage:
    """One recipient's message on one channel; its link lasts from the alert's issue."""
    ack_url = None
    if channel != "voice":
        ack_url = link_url(
            settings.public_url, make_token(settings.secret_key, recipient_id, channel)
        )
    context = MessageContext(
        status=alert.status,
        sent_at=alert.sent_at,
        reference=alert.reference,
        ack_url=ack_url,
        two_way_sms=settings.twilio_two_way_sms,
        org_name=target.org_name,
        contact_name=target.name,
    )
    # the issue admitted only known channels
    return render(alert.template, cast(Channel, channel), target.language, alert.variables, context)


def continue_planning(
    session: Session, settings: Settings, alert_id: int, start: int | None = None
) -> int:
    """The `dispatch_alert` task's work: plan the next slice if planning still stands at
    `start` (None: wherever it stands); returns how many recipients were planned."""
    # The row lock orders this slice with a cancel (relay/alerts/lifecycle.py locks it too):
    # a cancel either sees this slice's deliveries and stops them, or this slice sees it.
    alert = session.get(Alert, alert_id, with_for_update=True)
    if alert is None or alert.state != "dispatching":
        return 0
    if start is not None and start != alert.planned_recipients:
        return 0
    return plan_slice(session, settings, alert)


def plan_slice(
    session: Session,
    settings: Settings,
    alert: Alert,
    targets: Mapping[int, Target] | None = None,
    now: datetime | None = None,
) -> int:
    """Write the deliveries of the next PLAN_SLICE recipients and queue their sends, behind a
    task for the slice after (or mark the alert active). `targets` by contact id, when the
    caller has them (issuing); otherwise read from the directory as it is now."""
    now = now or datetime.now(UTC)
    begin = alert.planned_recipients
    slice_ = session.execute(
        select(Recipient.id, Recipient.contact_id, Recipient.position, Recipient.state)
        .where(Recipient.alert_id == alert.id, Recipient.position >= begin)
        .order_by(Recipient.position)
        .limit(PLAN_SLICE)
    ).all()
    if targets is None:
        contact_ids = tuple(r.contact_id for r in slice_)
        targets = {t.contact_id: t for t in resolve(session, Audience(contact_ids=contact_ids))}
    rows = [
        row
        for r in slice_
        if (target := targets.get(r.contact_id))
        is not None  # gone since the issue: no one to send to
        for row in _deliveries(settings, alert, target, r.id, r.position, r.state, now)
    ]
    by_channel: dict[str, list[int]] = {}
    if rows:
        written = session.execute(
            insert(Delivery).returning(
                Delivery.id, Delivery.channel, Delivery.state, sort_by_parameter_order=True
            ),
            rows,
        ).all()
        for delivery_id, channel, state in written:
            if state == QUEUED:
                by_channel.setdefault(channel, []).append(delivery_id)
    alert.planned_recipients = end = begin + len(slice_)
    queue = outbox.queue_for(alert.status)
    more = len(slice_) == PLAN_SLICE and session.scalar(
        select(exists().where(Recipient.alert_id == alert.id, Recipient.position >= end))
    )
    if more:
        # Queued before this slice's sends, so planning keeps a slice ahead of sending.
        outbox.add(session, "dispatch_alert", alert_id=alert.id, start=end, queue=queue)
    else:
        alert.state = "active"
    queue_batches(session, alert.id, queue, by_channel)
    return len(slice_)


def _deliveries(
    settings: Settings,
    alert: Alert,
    target: Target,
    recipient_id: int,
    position: int,
    recipient_state: str,
    now: datetime,
) -> list[dict[str, Any]]:
    reach = paths(target)
    chosen = [ch for ch in alert.channels if ch in reach]
    if alert.mode != "cascade":
        at_once = set(chosen)
    elif recipient_state == "waiting":
        at_once = set()  # an alternate: started by the escalation
    else:
        at_once = first_step(set(chosen), alert.escalation)[0]
    rows = []
    for channel in chosen:
        message = render_for(settings, alert, target, recipient_id, channel)
        queued = channel in at_once
        rows.append(
            {
                "alert_id": alert.id,
                "recipient_id": recipient_id,
                "channel": channel,
                "attempt": 1,
                # Coverage first across slices: a recipient's channels follow its position.
                "position": position * len(CHANNELS) + CHANNELS.index(channel),
                "address": reach[channel],
                "language": target.language,
                "subject": message.subject,
                "body": message.text,
                "html": message.html,
                "segments": message.segments,
                "state": QUEUED if queued else PLANNED,
                "due_at": now if queued else None,
                "created_at": now,
            }
        )
    return rows
