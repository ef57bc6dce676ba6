"""What happens to an accepted SMS: carrier statuses, then the recipient's reply or tap."""

from __future__ import annotations

from datetime import UTC, datetime

from .behaviour import Behaviour
from .callbacks import Party
from .context import Context
from .links import fill_in, find_link, tap
from .resources import API_VERSION, Message, new_sid
from .segments import count_segments

# Error codes Twilio reports in the status callback when the carrier could not deliver.
UNREACHABLE = 30003
UNKNOWN_DESTINATION = 30005
LANDLINE_OR_UNREACHABLE_CARRIER = 30006


def outcome_of(behaviour: Behaviour) -> tuple[str, int | None]:
    """Final MessageStatus and ErrorCode for a message to this recipient."""
    if behaviour.line == "unreachable":
        return "undelivered", behaviour.sms_error_code or UNREACHABLE
    if behaviour.line == "ip":
        return "undelivered", behaviour.sms_error_code or LANDLINE_OR_UNREACHABLE_CARRIER
    if behaviour.sms_outcome == "undelivered":
        return "undelivered", behaviour.sms_error_code or UNREACHABLE
    if behaviour.sms_outcome == "failed":
        return "failed", behaviour.sms_error_code or UNKNOWN_DESTINATION
    return "delivered", None


def start(ctx: Context, message: Message, behaviour: Behaviour) -> None:
    """Schedule the message's life after Twilio queued it."""
    status, code = outcome_of(behaviour)

    async def hand_to_carrier() -> None:
        if status == "failed":  # Twilio could not send it at all: no "sent" first
            await _set_status(ctx, message, "failed", code)
            return
        await _set_status(ctx, message, "sent", None)
        ctx.scheduler.later(behaviour.sms_delivery_delay, carrier_reports)

    async def carrier_reports() -> None:
        # The person's phone has the message now, whenever Twilio's callback gets through to
        # the relay: a relay slow to take callbacks must not slow the people down.
        if status == "delivered":
            _recipient_reacts(ctx, message, behaviour)
        await _set_status(ctx, message, status, code)

    ctx.scheduler.later(behaviour.sms_sent_delay, hand_to_carrier)


async def _set_status(ctx: Context, message: Message, status: str, code: int | None) -> None:
    now = datetime.now(UTC)
    message.status, message.error_code, message.updated = status, code, now
    if status == "sent":
        message.sent = now
    if not message.status_callback:
        return
    params = {
        "MessageSid": message.sid,
        "SmsSid": message.sid,
        "AccountSid": message.account_sid,
        "From": message.from_ or ctx.service_number,
        "To": message.to,
        "MessageStatus": status,
        "SmsStatus": status,
        "ApiVersion": API_VERSION,
    }
    if message.messaging_service_sid:
        params["MessagingServiceSid"] = message.messaging_service_sid
    if code is not None:
        params["ErrorCode"] = str(code)
    await ctx.courier.signed(
        "status_callback",
        message.status_callback,
        params,
        Party(to=message.to, from_=params["From"], sid=message.sid),
    )


def _recipient_reacts(ctx: Context, message: Message, behaviour: Behaviour) -> None:
    reply = behaviour.sms_reply
    if reply is not None:

        async def send_reply() -> None:
            await send_inbound_sms(
                ctx, message, reply, behaviour.reply_answers, reminded=behaviour.reminder
            )

        ctx.scheduler.later(behaviour.sms_reply_delay, send_reply)

    answer, form = behaviour.link_answer, behaviour.link_form
    link = find_link(message.body, ctx.link_base) if answer or form else None
    if link is not None:
        party = Party(to=message.to, sid=message.sid, reminded=behaviour.reminder)

        async def tap_link() -> None:
            if form:
                await fill_in(ctx.courier, link, form, party, answer)
            elif answer:
                await tap(ctx.courier, link, answer, party)

        ctx.scheduler.later(behaviour.link_delay, tap_link)


async def send_inbound_sms(
    ctx: Context,
    original: Message,
    body: str,
    answers: dict[str, str] | None = None,
    *,
    reminded: bool = False,
) -> None:
    """The recipient texts back: Twilio posts the inbound message to the relay's webhook.
    `answers`: the situation-report answers the text means, for the log."""
    sid = new_sid("SM")
    relay_number = original.from_ or ctx.service_number
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "SmsMessageSid": sid,
        "AccountSid": original.account_sid,
        "From": original.to,
        "To": relay_number,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": str(count_segments(body)),
        "SmsStatus": "received",
        "ApiVersion": API_VERSION,
    }
    if original.messaging_service_sid:
        params["MessagingServiceSid"] = original.messaging_service_sid
    party = Party(
        to=relay_number,
        from_=original.to,
        sid=sid,
        body=body,
        segments=count_segments(body),
        answers=answers,
        reminded=reminded,
    )
    await ctx.courier.signed("inbound_sms", ctx.sms_webhook_url, params, party)
