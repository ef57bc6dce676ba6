"""The template catalog (`templates/messages/catalog.toml`): per event, its variables, SMS
budget, answer options and CAP 1.2 info fields. Loaded and checked once, so a typo in the
catalog fails at start-up, not in the middle of an emergency fan-out.

TOML rather than JSON because the budgets and CAP choices need comments that say why.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from relay.messages.errors import CatalogError

LANGUAGES = ("ja", "en", "ja-easy")
VARIABLE_TYPES = ("text", "text_list", "intensity", "evacuation_level")
# Supplied by the composer to every template; an event may not declare a variable so named.
COMMON_VARIABLES = frozenset({
    "reference", "ack_url", "sent_at_local", "org_name", "contact_name", "answer_options",
    "two_way_sms", "prefix", "evacuation_label", "ward_name", "language", "status", "event",
})  # fmt: skip

# CAP 1.2 value lists (OASIS CAP v1.2, section 3.2.2).
CAP_CATEGORIES = frozenset({
    "Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport",
    "Infra", "CBRNE", "Other",
})  # fmt: skip
CAP_URGENCY = frozenset({"Immediate", "Expected", "Future", "Past", "Unknown"})
CAP_SEVERITY = frozenset({"Extreme", "Severe", "Moderate", "Minor", "Unknown"})
CAP_CERTAINTY = frozenset({"Observed", "Likely", "Possible", "Unlikely", "Unknown"})
CAP_RESPONSE_TYPES = frozenset({
    "Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None",
})  # fmt: skip
_CAP_ENUMS = {
    "urgency": CAP_URGENCY,
    "severity": CAP_SEVERITY,
    "certainty": CAP_CERTAINTY,
    "response_type": CAP_RESPONSE_TYPES,
}


@dataclass(frozen=True)
class AnswerOption:
    """One answer a recipient can give: press or reply `digit`; stored as `code`."""

    digit: str
    code: str
    label: str


@dataclass(frozen=True)
class AnswerSpec:
    code: str
    digit: str
    labels: Mapping[str, str]

    def option(self, language: str) -> AnswerOption:
        return AnswerOption(self.digit, self.code, self.labels.get(language, self.labels["ja"]))


@dataclass(frozen=True)
class VariableSpec:
    name: str
    type: str
    max_length: int
    max_items: int
    description: str


@dataclass(frozen=True)
class CapSpec:
    category: str
    urgency: str
    severity: str
    certainty: str
    response_type: str
    event: Mapping[str, str]
    # Jinja sources, rendered with the alert's variables (sandboxed for operator events).
    headline: Mapping[str, str]
    description: Mapping[str, str]
    instruction: Mapping[str, str]
    # Overrides of the four codes by evacuation level ("3".."5"): level 5 is not level 3.
    by_level: Mapping[int, Mapping[str, str]]


@dataclass(frozen=True)
class EventSpec:
    name: str
    description: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    sms_budget: Mapping[str, int]  # segments, per language
    answers: tuple[str, ...]
    sample: Mapping[str, object]
    cap: CapSpec
    operator: bool

    @property
    def allowed(self) -> frozenset[str]:
        return frozenset(self.required) | frozenset(self.optional)

    def budget(self, language: str) -> int:
        return self.sms_budget.get(language, self.sms_budget["ja"])


@dataclass(frozen=True)
class Catalog:
    events: Mapping[str, EventSpec]
    answers: Mapping[str, AnswerSpec]
    variables: Mapping[str, VariableSpec]
    repeat_digit: str

    def event(self, name: str) -> EventSpec | None:
        return self.events.get(name)

    def variable(self, name: str) -> VariableSpec:
        # A variable an operator event names but nobody described is plain text.
        return self.variables.get(name) or VariableSpec(name, "text", 200, 0, "")


def _fail(where: str, why: str) -> CatalogError:
    return CatalogError(f"catalog {where}: {why}")


def _table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, "must be a table")
    return value


def _text(table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value:
        raise _fail(where, f"{key!r} must be a non-empty string")
    return value


def _names(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, f"{key!r} must be a list of names")
    return tuple(value)


def _localized(value: object, where: str, *, all_languages: bool) -> Mapping[str, str]:
    table = _table(value, where)
    needed = LANGUAGES if all_languages else ("ja",)
    missing = [lang for lang in needed if not isinstance(table.get(lang), str)]
    if missing:
        raise _fail(where, f"missing language(s) {', '.join(missing)}")
    unknown = set(table) - set(LANGUAGES)
    if unknown:
        raise _fail(where, f"unknown language(s) {', '.join(sorted(unknown))}")
    return MappingProxyType(dict(table))


def _answers(raw: Mapping[str, Any], builtin: bool) -> dict[str, AnswerSpec]:
    found = {}
    for code, value in raw.items():
        where = f"answers.{code}"
        table = _table(value, where)
        digit = _text(table, "digit", where)
        if len(digit) != 1 or digit not in "12345678":
            raise _fail(where, "digit must be one of 1-8 (9 repeats the call, 0 is never used)")
        labels = _localized(table.get("label"), f"{where}.label", all_languages=builtin)
        found[code] = AnswerSpec(code, digit, labels)
    return found


def _variables(raw: Mapping[str, Any]) -> dict[str, VariableSpec]:
    found = {}
    for name, value in raw.items():
        where = f"variables.{name}"
        if name in COMMON_VARIABLES:
            raise _fail(where, "is supplied by the composer and cannot be declared")
        table = _table(value, where)
        kind = _text(table, "type", where, "text")
        if kind not in VARIABLE_TYPES:
            raise _fail(where, f"type must be one of {', '.join(VARIABLE_TYPES)}")
        max_length, max_items = table.get("max_length", 200), table.get("max_items", 10)
        if not isinstance(max_length, int) or not isinstance(max_items, int):
            raise _fail(where, "max_length and max_items must be integers")
        found[name] = VariableSpec(name, kind, max_length, max_items, table.get("description", ""))
    return found


def _cap(raw: object, where: str, builtin: bool) -> CapSpec:
    table = _table(raw, where)
    category = _text(table, "category", where)
    if category not in CAP_CATEGORIES:
        raise _fail(where, f"category {category!r} is not a CAP 1.2 category")
    codes = {}
    for key, allowed in _CAP_ENUMS.items():
        codes[key] = _text(table, key, where)
        if codes[key] not in allowed:
            raise _fail(where, f"{key} {codes[key]!r} is not a CAP 1.2 value")
    by_level: dict[int, Mapping[str, str]] = {}
    for level, override in _table(table.get("by_level", {}), where).items():
        entry = _table(override, f"{where}.by_level.{level}")
        for key, value in entry.items():
            if key not in _CAP_ENUMS or value not in _CAP_ENUMS[key]:
                raise _fail(f"{where}.by_level.{level}", f"bad override {key} = {value!r}")
        by_level[int(level)] = MappingProxyType(dict(entry))
    texts = {
        key: _localized(table.get(key), f"{where}.{key}", all_languages=builtin)
        for key in ("event", "headline", "description", "instruction")
    }
    return CapSpec(
        category=category,
        event=texts["event"],
        headline=texts["headline"],
        description=texts["description"],
        instruction=texts["instruction"],
        by_level=MappingProxyType(by_level),
        **codes,
    )


def _budget(value: object, where: str) -> Mapping[str, int]:
    # One number for every language, or a table: English needs about twice the characters
    # of Japanese for the same words, so it may be given more.
    table = dict.fromkeys(LANGUAGES, value) if isinstance(value, int) else value
    if (
        not isinstance(table, dict)
        or "ja" not in table
        or not set(table) <= set(LANGUAGES)
        or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 10 for v in table.values()
        )
    ):
        raise _fail(where, "sms_budget must be 1-10, or a table of that per language (with ja)")
    return MappingProxyType(dict(table))


def _event(name: str, raw: object, answers: Mapping[str, AnswerSpec], builtin: bool) -> EventSpec:
    where = f"events.{name}"
    table = _table(raw, where)
    required, optional = _names(table, "required", where), _names(table, "optional", where)
    clash = (set(required) | set(optional)) & COMMON_VARIABLES
    if clash or set(required) & set(optional):
        raise _fail(
            where, f"variable names clash: {', '.join(sorted(clash)) or 'required/optional'}"
        )
    budget = _budget(table.get("sms_budget"), where)
    codes = _names(table, "answers", where)
    if "ack" not in codes:
        raise _fail(where, "answers must include 'ack' (digit 1)")
    unknown = [c for c in codes if c not in answers]
    if unknown:
        raise _fail(where, f"unknown answer code(s) {', '.join(unknown)}")
    digits = [answers[c].digit for c in codes]
    if len(set(digits)) != len(digits):
        raise _fail(where, "two answers share a digit")
    sample = _table(table.get("sample", {}), f"{where}.sample")
    return EventSpec(
        name=name,
        description=str(table.get("description", "")),
        required=required,
        optional=optional,
        sms_budget=budget,
        answers=codes,
        sample=MappingProxyType(dict(sample)),
        cap=_cap(table.get("cap"), f"{where}.cap", builtin),
        operator=not builtin,
    )


def load_catalog(path: Path, base: Catalog | None = None) -> Catalog:
    """Read a catalog. With `base` (the built-in one), `path` is an operator's catalog: it may
    add events, answers and variables, never redefine them — a built-in emergency template
    must mean the same on every deployment."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"cannot read catalog {path}: {exc}") from None
    builtin = base is None
    answers = _answers(_table(raw.get("answers", {}), "answers"), builtin)
    variables = _variables(_table(raw.get("variables", {}), "variables"))
    if base is not None:
        for kind, new, old in (
            ("answer", answers, base.answers),
            ("variable", variables, base.variables),
        ):
            clash = set(new) & set(old)
            if clash:
                raise CatalogError(f"{path}: cannot redefine built-in {kind}(s) {sorted(clash)}")
        answers = {**base.answers, **answers}
        variables = {**base.variables, **variables}
    events = {
        name: _event(name, value, answers, builtin)
        for name, value in _table(raw.get("events", {}), "events").items()
    }
    if base is not None:
        clash = set(events) & set(base.events)
        if clash:
            raise CatalogError(f"{path}: cannot redefine built-in event(s) {sorted(clash)}")
        events = {**base.events, **events}
    voice = _table(raw.get("voice", {}), "voice")
    repeat = str(voice.get("repeat_digit", base.repeat_digit if base else "9"))
    if any(a.digit == repeat for a in answers.values()):
        raise CatalogError(f"{path}: an answer uses the voice repeat digit {repeat}")
    return Catalog(
        events=MappingProxyType(events),
        answers=MappingProxyType(answers),
        variables=MappingProxyType(variables),
        repeat_digit=repeat,
    )
