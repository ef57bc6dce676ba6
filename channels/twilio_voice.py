"""Voice calls through Twilio's Calls API, and the TwiML (Twilio's XML) the relay answers with."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from channels.base import Outcome, Receipt, VoiceCall
from channels.masking import mask_phone
from channels.twilio_errors import create_with_twilio
from channels.twilio_http import RelayTwilioHttpClient

log = logging.getLogger(__name__)

# Every progress event, so "rang but nobody answered" and "answered by a machine" are told
# apart from silence, and the next escalation step can start at once.
CALL_EVENTS = ["initiated", "ringing", "answered", "completed"]

# Amazon Polly's Japanese voice: Twilio's default voice ("man") has no Japanese, so an explicit
# ja-JP voice is what makes the message intelligible.
DEFAULT_VOICE = "Polly.Mizuki"
NO_INPUT_JA = "入力が確認できませんでした。失礼いたします。"


class TwilioVoice:
    """`VoiceChannel` on Twilio: one Calls `create` per call; the call fetches its TwiML from
    `VoiceCall.twiml_url`. `http_client` may be shared with `TwilioSms`."""

    provider = "twilio-voice"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str,
        api_url: str | None = None,
        http_client: RelayTwilioHttpClient | None = None,
        edge: str | None = None,
        region: str | None = None,
    ) -> None:
        self.from_number = from_number
        self.http = http_client or RelayTwilioHttpClient(api_url)
        self.client = Client(
            account_sid, auth_token, http_client=self.http, edge=edge, region=region
        )

    async def place_call(self, call: VoiceCall) -> Receipt:
        """Ask Twilio to place one call; QUEUED with the call SID."""
        options: dict[str, object] = {}
        if call.status_callback:
            options.update(
                status_callback=call.status_callback,
                status_callback_event=CALL_EVENTS,
                status_callback_method="POST",
            )
        if call.detect_machine:
            # "Enable": AnsweredBy as soon as known, so the TwiML can hang up on a machine.
            options["machine_detection"] = "Enable"
        created = await create_with_twilio(
            "call",
            call.to,
            lambda: self.client.calls.create_async(
                to=call.to, from_=self.from_number, url=call.twiml_url, method="POST", **options
            ),
        )
        log.debug("call to %s queued: %s", mask_phone(call.to), created.sid)
        return Receipt(provider=self.provider, provider_id=created.sid, outcome=Outcome.QUEUED)

    async def close(self) -> None:
        await self.http.close()


def call_twiml(
    text: str,
    *,
    gather_action: str,
    prompt: str,
    language: str = "ja-JP",
    voice: str | None = DEFAULT_VOICE,
    repeat: int = 2,
    timeout_s: int = 8,
    no_input: str = NO_INPUT_JA,
    speech_hints: Sequence[str] = (),
) -> str:
    """The call's script: `text` said `repeat` times, then `prompt` inside a one-digit
    <Gather> posting to `gather_action`, then `no_input` if no key was pressed.

    With `speech_hints` the Gather also listens for a spoken answer in `language` (Twilio then
    posts `SpeechResult` instead of `Digits`); the hints bias recognition towards the words
    the relay understands. The message is repeated as separate <Say> verbs (not loop=) so a
    key pressed during the prompt is the only keypress that counts.
    """
    response = VoiceResponse()
    for _ in range(max(1, repeat)):
        response.say(text, **_say_attrs(language, voice))
    speech: dict[str, str] = {}
    if speech_hints:
        # "auto": the answer ends at the first pause, so a short はい is posted at once.
        speech = {
            "input": "dtmf speech",
            "language": language,
            "hints": ",".join(speech_hints),
            "speech_timeout": "auto",
        }
    gather = response.gather(
        action=gather_action, method="POST", num_digits=1, timeout=timeout_s, **speech
    )
    gather.say(prompt, **_say_attrs(language, voice))
    response.say(no_input, **_say_attrs(language, voice))
    return str(response.to_xml())


def question_twiml(
    before: str,
    prompt: str,
    *,
    gather_action: str,
    number: bool,
    language: str = "ja-JP",
    voice: str | None = DEFAULT_VOICE,
    timeout_s: int = 10,
    no_input: str = NO_INPUT_JA,
) -> str:
    """One question of a situation report by keypad: `before` said once (what was heard),
    then `prompt` inside a <Gather> posting to `gather_action` — one digit for a choice, or
    digits ended by # for a `number`."""
    response = VoiceResponse()
    if before:
        response.say(before, **_say_attrs(language, voice))
    keys: dict[str, object] = {"finish_on_key": "#"} if number else {"num_digits": 1}
    gather = response.gather(action=gather_action, method="POST", timeout=timeout_s, **keys)
    gather.say(prompt, **_say_attrs(language, voice))
    response.say(no_input, **_say_attrs(language, voice))
    return str(response.to_xml())


def say_twiml(
    text: str, language: str = "ja-JP", voice: str | None = DEFAULT_VOICE, *, hangup: bool = True
) -> str:
    """A document that says `text` once (e.g. the acknowledgement's confirmation), then hangs up."""
    response = VoiceResponse()
    response.say(text, **_say_attrs(language, voice))
    if hangup:
        response.hangup()
    return str(response.to_xml())


def hangup_twiml() -> str:
    """End the call at once (e.g. when AnsweredBy says a machine picked up)."""
    response = VoiceResponse()
    response.hangup()
    return str(response.to_xml())


def messaging_twiml(reply: str | None) -> str:
    """The answer to an inbound SMS webhook: one reply message, or an empty <Response/>."""
    response = MessagingResponse()
    if reply:
        response.message(reply)
    return str(response.to_xml())


def _say_attrs(language: str, voice: str | None) -> dict[str, str]:
    return {"language": language, "voice": voice} if voice else {"language": language}
