"""Reading the TwiML a call is given: just the verbs a phone call to a recipient needs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass


class TwimlError(ValueError):
    """Not a TwiML document Twilio would run (Twilio answers such a call with error 12100)."""


@dataclass(frozen=True)
class Verb:
    name: str  # "Say", "Gather", "Redirect", "Hangup", "Pause", "Play", "Reject", ...
    attrs: dict[str, str]
    text: str  # spoken text for Say, the URL for Redirect/Play
    children: tuple[Verb, ...] = ()

    def attr(self, name: str, default: str = "") -> str:
        return self.attrs.get(name, default)


def parse_twiml(document: str) -> list[Verb]:
    """The verbs of a <Response>, in order."""
    # A DTD is the only way into entity-expansion attacks, and TwiML never has one; refusing it
    # makes the stdlib parser safe for what a relay (or a test) hands the simulator.
    if "<!DOCTYPE" in document or "<!ENTITY" in document:
        raise TwimlError("TwiML must not contain a DTD")
    try:
        root = ET.fromstring(document)  # noqa: S314 - DTDs refused above
    except ET.ParseError as exc:
        raise TwimlError(f"malformed TwiML: {exc}") from None
    if root.tag != "Response":
        raise TwimlError(f"root element is <{root.tag}>, expected <Response>")
    verbs = [_verb(element) for element in root]
    for verb in verbs:
        if verb.name == "Gather":
            _check_gather(verb)
    return verbs


# <Gather input>: "dtmf", "speech" or both, space-separated (Twilio's TwiML reference).
GATHER_INPUTS = frozenset({"dtmf", "speech"})
# Languages Twilio's <Gather> speech recognition accepts (its "supported languages" table;
# the ones a relay in Japan could plausibly ask for, plus a few common others).
SPEECH_LANGUAGES = frozenset(
    {
        "ja-JP", "en-US", "en-GB", "en-AU", "en-CA", "en-IN", "ko-KR", "cmn-Hans-CN",
        "cmn-Hant-TW", "yue-Hant-HK", "zh", "zh-TW", "zh-HK", "vi-VN", "th-TH", "fil-PH",
        "id-ID", "pt-BR", "es-ES", "es-MX", "es-US", "fr-FR", "de-DE", "it-IT", "ne-NP",
    }
)  # fmt: skip


def gather_inputs(verb: Verb) -> frozenset[str]:
    return frozenset(verb.attr("input", "dtmf").split())


def _check_gather(verb: Verb) -> None:
    """What Twilio refuses in a <Gather>: an unknown input, or speech in a language its
    recognizer does not have. Twilio does not run such a Gather; the simulator refuses the
    whole document, so a relay that writes one fails its tests."""
    inputs = verb.attr("input", "dtmf").split()
    if not inputs or not set(inputs) <= GATHER_INPUTS:
        raise TwimlError(f"<Gather input={verb.attr('input')!r}>: expected dtmf, speech or both")
    if "speech" in inputs:
        language = verb.attr("language", "en-US")
        if language not in SPEECH_LANGUAGES:
            raise TwimlError(f"<Gather language={language!r}>: not a speech recognition language")


def _verb(element: ET.Element) -> Verb:
    return Verb(
        name=element.tag,
        attrs=dict(element.attrib),
        text=(element.text or "").strip(),
        children=tuple(_verb(child) for child in element),
    )


def spoken_seconds(verb: Verb) -> float:
    """Rough time to play a Say/Play (Japanese TTS speaks ~7 characters a second)."""
    loops = max(1, int(verb.attr("loop", "1") or "1"))
    if verb.name == "Say":
        return loops * max(1.0, len(verb.text) / 7)
    if verb.name == "Play":
        return loops * 5.0
    if verb.name == "Pause":
        return float(verb.attr("length", "1") or "1")
    return 0.0
