"""The composer: event + channel + language + variables + context → the message to send.

Markers (【訓練】/【テスト】) are added here, not in the templates, so no template — least of
all an operator's — can forget them. Templates get the common variables listed in
catalog.COMMON_VARIABLES; optional variables not given are None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, Template, TemplateError, TemplateNotFound, UndefinedError
from markupsafe import escape

from relay.messages.catalog import (
    LANGUAGES,
    AnswerOption,
    Catalog,
    EventSpec,
    load_catalog,
)
from relay.messages.context import (
    CHANNELS,
    MARKERS,
    SPOKEN_MARKERS,
    WARD_NAMES,
    MessageContext,
    RenderedMessage,
    local_time,
    resolve_language,
)
from relay.messages.environment import builtin_environment, operator_environment
from relay.messages.errors import (
    CatalogError,
    SegmentBudgetError,
    TemplateRenderError,
    TemplateVariableError,
    UnknownTemplateError,
)
from relay.messages.evacuation import TOKYO, evacuation_label
from relay.messages.segments import sms_segments, sms_units
from relay.messages.variables import normalize

# One line at the top of the plain-text email of a non-real alert (the marker, then why).
_EMAIL_MARKER_LINES = {
    "Exercise": {
        "ja": "【訓練】これは訓練のための連絡です。",
        "en": "【訓練】DRILL: this is an exercise message.",
        "ja-easy": "【訓練】(くんれん) これは くんれん の れんらく です。",
    },
    "Test": {
        "ja": "【テスト】これはテスト送信です。",
        "en": "【テスト】TEST: this is a test message.",
        "ja-easy": "【テスト】これは テスト の れんらく です。",
    },
}
_CAP_LANGUAGES = {"ja": "ja-JP", "en": "en-US", "ja-easy": "ja-JP-x-easy"}
_AREA_FALLBACK = {"ja": "金沢区", "en": "Kanazawa Ward", "ja-easy": "金沢区"}
# Placeholder link for trial renders: as long as a real one (relay/replies/links.py: 12-char
# token) under the longest public URL the wording is written for (catalog.toml).
_TRIAL_LINK = "https://bousai.city.example.jp/a/" + "x" * 12
_URL = re.compile(r"https?://\S+")
# A reading after a word, 避難所(ひなんじょ): the voice already says the word.
_READING = re.compile(r"[(（][\u3041-\u309f\u30a0-\u30ff\s・]+[)）]")
_BRACKETS = re.compile(r"[【】「」『』()（）\[\]［］<>〈〉《》{}｛｝]+")
_UNDEFINED = re.compile(r"'([^']+)' is undefined")
_BODY_TAG = re.compile(r"<body[^>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class CapInfo:
    """The CAP 1.2 <info> block of an alert in one language."""

    language: str
    category: str
    event: str
    urgency: str
    severity: str
    certainty: str
    response_type: str
    headline: str
    description: str
    instruction: str
    area_desc: str


def _tidy(text: str, *, blank_lines: bool) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    if not blank_lines:
        return "\n".join(line for line in lines if line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def _speakable(text: str, language: str) -> str:
    """Speech has no URLs, brackets or line breaks: a voice reads symbols aloud or trips on
    them. Operator-supplied values (an area written 「六浦（一部）」) are cleaned the same way."""
    text = _READING.sub("", _URL.sub("", text))
    text = _BRACKETS.sub(" " if language == "en" else "、", text)
    # Japanese needs no space between sentences; English does.
    joiner = " " if language in ("en", "ja-easy") else ""
    text = joiner.join(line.strip() for line in text.splitlines() if line.strip())
    # Where a bracket met punctuation: one pause, none at the start or before/after 。.
    text = re.sub(r"\s*、[\s、]*", "、", text)
    text = re.sub(r"^、|、(?=。)|(?<=。)、", "", text)
    text = re.sub(r"\s+(?=[.,;:!?])", "", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def _with_marker(text: str, marker: str) -> str:
    return text if not marker or text.startswith(marker) else marker + text


class Composer:
    """Templates and catalog of one deployment: the shipped ones, plus an operator's
    directory (its own `catalog.toml` and `<event>/` folders) rendered in a sandbox."""

    def __init__(self, templates_dir: Path | None = None, operator_dir: Path | None = None):
        root = templates_dir or Path(__file__).resolve().parents[2] / "templates"
        self.builtin_dir = root / "messages"
        self.operator_dir = operator_dir
        self.catalog: Catalog = load_catalog(self.builtin_dir / "catalog.toml")
        self._builtin_env = builtin_environment(self.builtin_dir)
        self._operator_env: Environment | None = None
        if operator_dir is not None:
            self.catalog = load_catalog(operator_dir / "catalog.toml", base=self.catalog)
            self._operator_env = operator_environment(operator_dir, self.builtin_dir)
            self._check_operator_files(operator_dir)
        self._strings: dict[tuple[str, str, str], Template] = {}

    def _check_operator_files(self, operator_dir: Path) -> None:
        for spec in self.catalog.events.values():
            if not spec.operator:
                continue
            for name in ("sms", "voice", "email_subject", "email"):
                suffix = ".txt.j2" if name == "email" else ".j2"
                if not (operator_dir / spec.name / f"{name}.ja{suffix}").is_file():
                    raise CatalogError(f"operator event {spec.name!r} has no {name}.ja{suffix}")

    # ---- catalog questions -------------------------------------------------------------

    def spec(self, event: str) -> EventSpec:
        spec = self.catalog.event(event)
        if spec is None:
            known = ", ".join(self.list_templates())
            raise UnknownTemplateError(event, f"unknown template {event!r} (known: {known})")
        return spec

    def list_templates(self) -> list[str]:
        return sorted(self.catalog.events)

    def sample_variables(self, event: str) -> dict[str, object]:
        return {
            k: list(v) if isinstance(v, list) else v for k, v in self.spec(event).sample.items()
        }

    def sms_budget(self, event: str, language: str = "ja") -> int:
        return self.spec(event).budget(resolve_language(language))

    def answer_options(self, event: str, language: str) -> list[AnswerOption]:
        lang = resolve_language(language)
        return [self.catalog.answers[code].option(lang) for code in self.spec(event).answers]

    # ---- checking ----------------------------------------------------------------------

    def normalize(self, event: str, variables: Mapping[str, object]) -> dict[str, object]:
        return normalize(self.catalog, self.spec(event), variables)

    def validate(self, event: str, variables: Mapping[str, object]) -> None:
        """Everything that can be known before the audience: the variables, and that every
        channel and language renders with them (an operator template that refers to a
        variable its catalog does not declare fails here, not half-way through a fan-out)."""
        self.normalize(event, variables)
        trial = MessageContext("Actual", datetime.now(UTC), "ABCD", _TRIAL_LINK, True, "", "")
        for channel in CHANNELS:
            for language in LANGUAGES:
                self.render(event, channel, language, variables, trial)

    def check_budget(self, event: str, message: RenderedMessage) -> None:
        """Raise SegmentBudgetError if `message` is an SMS over its event's budget."""
        budget = self.spec(event).budget(message.language)
        if message.channel == "sms" and message.segments > budget:
            units = sms_units(message.text)
            raise SegmentBudgetError(event, message.language, message.segments, budget, units)

    # ---- rendering ---------------------------------------------------------------------

    def _env(self, spec: EventSpec) -> Environment:
        if spec.operator and self._operator_env is not None:
            return self._operator_env
        return self._builtin_env

    def _common(
        self, spec: EventSpec, lang: str, values: Mapping[str, object], ctx: MessageContext
    ) -> dict[str, Any]:
        level = values.get("level")
        return {
            **values,
            "event": spec.name,
            "language": lang,
            "status": ctx.status,
            "reference": ctx.reference,
            "ack_url": ctx.ack_url,
            "sent_at_local": local_time(ctx.sent_at, lang),
            "org_name": ctx.org_name,
            "contact_name": ctx.contact_name,
            "answer_options": self.answer_options(spec.name, lang),
            "two_way_sms": ctx.two_way_sms,
            "prefix": MARKERS[ctx.status][lang],
            "evacuation_label": (
                evacuation_label(level, ctx.sent_at, lang) if isinstance(level, int) else None
            ),
            "ward_name": ctx.ward_name or WARD_NAMES[lang],
        }

    def _render_file(
        self, spec: EventSpec, name: str, lang: str, variables: Mapping[str, Any], *, need: bool
    ) -> str | None:
        env = self._env(spec)
        head, _, tail = name.partition(".")  # "email.txt.j2" → email + txt.j2
        for candidate in dict.fromkeys((lang, "ja")):
            path = f"{spec.name}/{head}.{candidate}.{tail}"
            try:
                template = env.get_template(path)
            except TemplateNotFound:
                continue
            except TemplateError as exc:
                raise TemplateRenderError(path, str(exc)) from exc
            try:
                return template.render(variables)
            except UndefinedError as exc:
                found = _UNDEFINED.search(str(exc))
                problem = (found.group(1) if found else "?", f"used by {path} but not given")
                raise TemplateVariableError(spec.name, [problem]) from exc
            except TemplateError as exc:
                raise TemplateRenderError(path, str(exc)) from exc
            except (ArithmeticError, TypeError, ValueError, LookupError) as exc:
                # An operator's template doing impossible arithmetic ({{ 1/0 }}) or asking
                # the sandbox for too much (range over 100,000): refused like any fault.
                raise TemplateRenderError(path, f"{type(exc).__name__}: {exc}") from exc
        if need:
            raise UnknownTemplateError(spec.name, f"template {spec.name!r} has no {head} file")
        return None

    def render(
        self,
        event: str,
        channel: str,
        language: str,
        variables: Mapping[str, object],
        context: MessageContext,
        *,
        enforce_budget: bool = False,
    ) -> RenderedMessage:
        """Render one message. Raises UnknownTemplateError, TemplateVariableError,
        TemplateRenderError, and with `enforce_budget` SegmentBudgetError."""
        spec = self.spec(event)
        if channel not in CHANNELS:
            raise UnknownTemplateError(event, f"no channel {channel!r} (sms, voice, email)")
        lang = resolve_language(language)
        values = self._common(spec, lang, normalize(self.catalog, spec, variables), context)
        marker = MARKERS[context.status][lang]
        subject = html = None
        if channel == "sms":
            raw = self._render_file(spec, "sms.j2", lang, values, need=True) or ""
            text = _with_marker(_tidy(raw, blank_lines=False), marker)
        elif channel == "voice":
            raw = self._render_file(spec, "voice.j2", lang, values, need=True) or ""
            spoken = SPOKEN_MARKERS[context.status][lang]
            body = _speakable(raw, lang)
            joiner = "" if lang == "ja" else " "
            text = joiner.join((spoken, body, spoken)) if spoken else body
        else:
            raw_subject = self._render_file(spec, "email_subject.j2", lang, values, need=True)
            subject = _with_marker(" ".join((raw_subject or "").split()), marker)
            raw = self._render_file(spec, "email.txt.j2", lang, values, need=True) or ""
            text = _tidy(raw, blank_lines=True)
            if marker:
                text = f"{_EMAIL_MARKER_LINES[context.status][lang]}\n\n{text}"
            html = self._render_file(spec, "email.html.j2", lang, values, need=False)
            if html is not None and marker and marker not in html:
                banner = f"<p><strong>{escape(marker)}</strong></p>"
                found = _BODY_TAG.search(html)
                at = found.end() if found else 0
                html = html[:at] + banner + html[at:]
        message = RenderedMessage(
            event=event,
            channel=channel,
            language=lang,
            subject=subject,
            text=text,
            html=html,
            segments=sms_segments(text) if channel == "sms" else 0,
        )
        if enforce_budget:
            self.check_budget(event, message)
        return message

    def cap_info(
        self, event: str, language: str, variables: Mapping[str, object], on: date | None = None
    ) -> CapInfo:
        """CAP 1.2 <info> fields for the alert; `on` dates the evacuation label (default:
        today in Tokyo)."""
        spec = self.spec(event)
        lang = resolve_language(language)
        values: dict[str, Any] = dict(normalize(self.catalog, spec, variables))
        level = values.get("level")
        when = on or datetime.now(TOKYO)
        values["evacuation_label"] = (
            evacuation_label(level, when, lang) if isinstance(level, int) else None
        )
        values["ward_name"] = WARD_NAMES[lang]
        values["language"] = lang
        cap = spec.cap
        codes = {
            "urgency": cap.urgency,
            "severity": cap.severity,
            "certainty": cap.certainty,
            "response_type": cap.response_type,
        }
        if isinstance(level, int):
            codes.update(cap.by_level.get(level, {}))
        texts = {}
        for key in ("headline", "description", "instruction"):
            template = self._strings.get((event, key, lang))
            if template is None:
                source = getattr(cap, key)
                template = self._env(spec).from_string(source.get(lang, source["ja"]))
                self._strings[(event, key, lang)] = template
            try:
                texts[key] = " ".join(template.render(values).split())
            except TemplateError as exc:
                raise TemplateRenderError(f"catalog {event}.cap.{key}", str(exc)) from exc
        area = values.get("area")
        return CapInfo(
            language=_CAP_LANGUAGES[lang],
            category=cap.category,
            event=cap.event.get(lang, cap.event["ja"]),
            headline=texts["headline"],
            description=texts["description"],
            instruction=texts["instruction"],
            area_desc=str(area) if area else _AREA_FALLBACK[lang],
            **codes,
        )
