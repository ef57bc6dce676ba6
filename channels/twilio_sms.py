"""SMS through Twilio's Messages API."""

from __future__ import annotations

import logging

from twilio.rest import Client

from channels.base import Outcome, Receipt, SmsMessage
from channels.masking import mask_phone
from channels.twilio_errors import create_with_twilio
from channels.twilio_http import RelayTwilioHttpClient

log = logging.getLogger(__name__)


class TwilioSms:
    """`SmsChannel` on Twilio: one Messages `create` per message.

    The sender is `messaging_service_sid` when given (Twilio picks a number from its pool; a
    From number configured for voice is then not sent), else `from_number`. `http_client` may
    be shared with `TwilioVoice`; by default each channel makes its own (see
    `RelayTwilioHttpClient` for its session and loop rules).
    """

    provider = "twilio-sms"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        api_url: str | None = None,
        http_client: RelayTwilioHttpClient | None = None,
        edge: str | None = None,
        region: str | None = None,
    ) -> None:
        if not (from_number or messaging_service_sid):
            raise ValueError("give from_number or messaging_service_sid")
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.http = http_client or RelayTwilioHttpClient(api_url)
        self.client = Client(
            account_sid, auth_token, http_client=self.http, edge=edge, region=region
        )

    async def send_sms(self, message: SmsMessage) -> Receipt:
        """Hand one SMS to Twilio; QUEUED with the message SID and segment count."""
        sender: dict[str, str] = (
            {"messaging_service_sid": self.messaging_service_sid}
            if self.messaging_service_sid
            else {"from_": str(self.from_number)}
        )
        created = await create_with_twilio(
            "sms",
            message.to,
            lambda: self.client.messages.create_async(
                to=message.to,
                body=message.body,
                status_callback=message.status_callback or None,
                **sender,
            ),
        )
        segments = _int(created.num_segments, default=1)
        log.debug(
            "sms to %s queued: %s (%d segments)", mask_phone(message.to), created.sid, segments
        )
        return Receipt(
            provider=self.provider,
            provider_id=created.sid,
            outcome=Outcome.QUEUED,
            segments=segments,
        )

    async def close(self) -> None:
        await self.http.close()


def _int(value: object, *, default: int) -> int:
    try:
        return max(1, int(str(value)))
    except (TypeError, ValueError):
        return default
