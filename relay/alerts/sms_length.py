"""What the operator is told about an alert's SMS length before and after issuing it: per
language, how far its SMS goes past the segments the wording is written for
(relay/messages/fit.py). Every recipient's SMS of a language is the same text but for the
link's token, which has a fixed length, so one render per language tells for all."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from relay.config import Settings
from relay.messages import LANGUAGES, LengthNote, MessageContext, length_note, render
from relay.replies.links import TOKEN_LENGTH, link_url

SAMPLE_TOKEN = "x" * TOKEN_LENGTH  # as long as a real one


def sample_context(
    settings: Settings, status: str, org_name: str = "", name: str = ""
) -> MessageContext:
    return MessageContext(
        status=status,
        sent_at=datetime.now(UTC),
        reference="ABCD",
        ack_url=link_url(settings.public_url, SAMPLE_TOKEN),
        two_way_sms=settings.twilio_two_way_sms,
        org_name=org_name,
        contact_name=name,
    )


def sms_length_notes(
    settings: Settings,
    template: str,
    variables: Mapping[str, object],
    status: str,
    languages: tuple[str, ...] = LANGUAGES,
) -> list[LengthNote]:
    """One note per language whose SMS is longer than its target; [] when all fit. The
    template and variables must already be valid (raises what render raises)."""
    context = sample_context(settings, status)
    notes = []
    for language in languages:
        note = length_note(
            render(template, "sms", language, variables, context), settings.public_url
        )
        if note is not None:
            notes.append(note)
    return notes
