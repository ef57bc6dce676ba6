"""Trigger rules: which JMA bulletins make which alert, for whom, and whether it goes out at
once (`auto`) or waits for an operator's confirmation (`draft`).

The ward's rules are a YAML file (RELAY_TRIGGERS; by default relay/jma/kanazawa.yaml, whose
comments are the operator's guide). `load_rules` reads it once and checks everything an
operator can get wrong — an unknown key, template, questionnaire, channel, audience or
intensity, a placeholder the relay does not fill — and refuses the whole file with a
RulesError naming the file, the rule and the field, so a typo stops the relay at start-up
instead of silently never alerting.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from relay.alerts.issuing import MODES
from relay.directory.audience import AudienceError, parse_audience
from relay.durations import parse_duration
from relay.jma.bulletin import INTENSITIES, INTENSITY_JA
from relay.messages import (
    CHANNELS,
    MessageError,
    default_composer,
)
from relay.questions.catalog import QuestionnaireError, load_all

DEFAULT_RULES = Path(__file__).resolve().parent / "kanazawa.yaml"
MAX_RULES_BYTES = 256 * 1024  # a ward's rules are a few kilobytes

# The bulletin kinds a rule can read: those that name areas (hypocentre and unknown never do).
RULE_KINDS = ("intensity", "tsunami", "warning", "landslide")
ACTIONS = ("draft", "auto")
# Placeholders filled from the bulletin, and the kinds of bulletin that fill each one.
PLACEHOLDERS: Mapping[str, tuple[str, ...]] = {
    "intensity": ("intensity",),
    "area": RULE_KINDS,
    "level": ("warning", "landslide"),
    "kinds": ("tsunami", "warning", "landslide"),
}
# Values the placeholders are tried with when a rule is loaded, to check the variables against
# the template (type, length) before any bulletin arrives.
_TRIAL = {"intensity": "5弱", "area": "横浜金沢区", "level": "4", "kinds": "大雨特別警報"}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_KEYS = (
    "name",
    "kinds",
    "area_codes",
    "min_intensity",
    "warnings",
    "template",
    "variables",
    "audience",
    "channels",
    "mode",
    "action",
    "questions",
    "ack_within",
    "exercise",
    "titles",
)
_REQUIRED = ("name", "kinds", "area_codes", "template", "audience")


_Bad = Callable[[str, str], "RulesError"]


class RulesError(ValueError):
    """The rules file cannot be used; one line naming the file, the rule and the field."""


@dataclass(frozen=True)
class Rule:
    name: str
    kinds: tuple[str, ...]  # bulletin kinds it reads
    area_codes: tuple[str, ...]
    min_intensity: str | None  # for intensity rules, a code of INTENSITIES
    warnings: tuple[str, ...]  # kind names that match (old and new names)
    template: str  # a built-in or operator template (relay.messages)
    variables: Mapping[str, str]  # values may use {intensity} {area} {level} {kinds}
    audience: str  # an audience selector as operators write it
    channels: tuple[str, ...] = ("sms", "voice", "email")
    mode: str = "cascade"
    action: str = "draft"  # "draft" | "auto"
    questions: tuple[str, ...] = ()  # questionnaires (templates/questions/*.toml)
    ack_within: timedelta = timedelta(minutes=15)
    exercise: bool = False  # a 訓練 bulletin makes an exercise (status Exercise) with this rule
    # Addition: the Control/Title values it reads (震度速報 ...); () reads every bulletin of its
    # kinds. Lets a rule for areas read only 震度速報, so that the city-level bulletin that
    # follows acts through the city's own rule and not twice.
    titles: tuple[str, ...] = ()


def load_rules(path: Path | None = None) -> tuple[Rule, ...]:
    """The rules in `path` (None: relay/jma/kanazawa.yaml), in the order written (a bulletin
    that meets several rules acts on them in this order), or RulesError."""
    path = path or DEFAULT_RULES
    where = str(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_RULES_BYTES + 1)
    except OSError as exc:
        raise RulesError(f"{where}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_RULES_BYTES:
        raise RulesError(f"{where}: larger than {MAX_RULES_BYTES // 1024} KB; not a rules file")
    try:
        document = yaml.load(raw.decode("utf-8"), Loader=_Loader)  # noqa: S506 (safe loader)
    except UnicodeDecodeError:
        raise RulesError(f"{where}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"{where}: not valid YAML: {_one_line(str(exc))}") from None
    if not isinstance(document, dict) or set(document) != {"rules"}:
        keys = ", ".join(map(str, document)) if isinstance(document, dict) else ""
        raise RulesError(
            f"{where}: the file must hold one key, rules: a list of rules"
            + (f" (found {keys})" if keys else "")
        )
    items = document["rules"]
    if not isinstance(items, list) or not items:
        raise RulesError(f"{where}: rules must be a list of at least one rule")
    rules = tuple(_rule(item, f"{where}: rule {n}") for n, item in enumerate(items, start=1))
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise RulesError(f"{where}: rule {rule.name!r}: name: used by two rules")
        seen.add(rule.name)
    return rules


class _Loader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no types
    """YAML's safe loader that also refuses a key written twice in one mapping (the second
    would silently win: two `action:` lines, one of them `auto`)."""


def _mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in keys:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} is written twice", key_node.start_mark
            )
        keys.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node)
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _rule(item: object, where: str) -> Rule:
    if not isinstance(item, dict):
        raise RulesError(f"{where}: a rule is a mapping of keys (name:, kinds:, ...)")
    name = item.get("name")
    if isinstance(name, str) and name.strip():
        where = f"{where.rpartition(': rule ')[0]}: rule {name.strip()!r}"
    unknown = [str(k) for k in item if k not in _KEYS]
    if unknown:
        raise RulesError(f"{where}: {unknown[0]}: unknown key (keys: {', '.join(_KEYS)})")
    for key in _REQUIRED:
        if item.get(key) in (None, ""):
            raise RulesError(f"{where}: {key}: missing")
        if item.get(key) == []:
            raise RulesError(f"{where}: {key}: empty; list at least one")

    def bad(key: str, why: str) -> RulesError:
        return RulesError(f"{where}: {key}: {why}")

    name = _name(item["name"], bad)
    kinds = _words(item["kinds"], "kinds", bad)
    wrong = [k for k in kinds if k not in RULE_KINDS]
    if wrong:
        raise bad("kinds", f"unknown kind {wrong[0]!r} (one of {', '.join(RULE_KINDS)})")
    codes = _words(item["area_codes"], "area_codes", bad, numbers=True)
    odd = [c for c in codes if not c.isascii() or not c.isdigit()]
    if odd:
        raise bad("area_codes", f"{odd[0]!r} is not a JMA area code (digits, e.g. 1410800)")
    min_intensity = _min_intensity(item.get("min_intensity"), "intensity" in kinds, bad)
    warnings = _words(item.get("warnings") or [], "warnings", bad)
    if set(kinds) - {"intensity"} and not warnings:
        raise bad("warnings", "missing: the kind names that match (e.g. 津波警報)")
    if warnings and set(kinds) <= {"intensity"}:
        raise bad("warnings", "only for tsunami, warning and landslide rules")
    template = _template(item["template"], bad)
    variables = _variables(item.get("variables") or {}, kinds, template, bad)
    audience = item["audience"]
    if not isinstance(audience, str):
        raise bad("audience", "a selector such as all or tag:cliff-zone")
    try:
        parse_audience(audience)
    except AudienceError as exc:
        raise bad("audience", str(exc)) from None
    channels = _words(item.get("channels") or ["sms", "voice", "email"], "channels", bad)
    wrong = [c for c in channels if c not in CHANNELS]
    if wrong:
        raise bad("channels", f"unknown channel {wrong[0]!r} (one of {', '.join(CHANNELS)})")
    mode = item.get("mode", "cascade")
    if mode not in MODES:
        raise bad("mode", f"{mode!r}; one of {', '.join(MODES)}")
    action = item.get("action", "draft")
    if action not in ACTIONS:
        raise bad("action", f"{action!r}; draft (an operator confirms) or auto (sent at once)")
    questions = _words(item.get("questions") or [], "questions", bad)
    try:
        known = load_all()
    except QuestionnaireError as exc:
        raise bad("questions", f"the questionnaires cannot be read: {exc}") from None
    wrong = [q for q in questions if q not in known]
    if wrong:
        raise bad("questions", f"unknown questionnaire {wrong[0]!r} (known: {', '.join(known)})")
    titles = _words(item.get("titles") or [], "titles", bad)
    exercise = item.get("exercise", False)
    if not isinstance(exercise, bool):
        raise bad("exercise", "true or false")
    return Rule(
        name=name,
        kinds=kinds,
        area_codes=codes,
        min_intensity=min_intensity,
        warnings=warnings,
        template=template,
        variables=variables,
        audience=audience.strip(),
        channels=channels,
        mode=str(mode),
        action=str(action),
        questions=questions,
        ack_within=_ack_within(item.get("ack_within", "15m"), bad),
        exercise=exercise,
        titles=titles,
    )


def _name(value: object, bad: _Bad) -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad("name", "a short name, e.g. kanazawa-quake")
    name = value.strip()
    if len(name) > 100 or any(unicodedata.category(c) == "Cc" for c in name):
        raise bad("name", "at most 100 characters on one line")
    return name


def _words(value: object, key: str, bad: _Bad, *, numbers: bool = False) -> tuple[str, ...]:
    """A list of text (a single value is a list of one); duplicates dropped."""
    items = value if isinstance(value, list) else [value]
    words: list[str] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int) or not str(item).strip():
            raise bad(key, f"{item!r} is not a name{' or a code' if numbers else ''}")
        if isinstance(item, int) and not numbers:
            raise bad(key, f"{item!r} is not a name")
        words.append(str(item).strip())
    return tuple(dict.fromkeys(words))


def intensity_code(value: object) -> str | None:
    """JMA's code (INTENSITIES) for 5-, 5弱, ５弱, 震度5弱, 4 ...; None if it is none."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = unicodedata.normalize("NFKC", str(value)).replace(" ", "").removeprefix("震度")
    if text in INTENSITIES:
        return text
    return next((code for code, ja in INTENSITY_JA.items() if ja == text), None)


def _min_intensity(value: object, reads_intensity: bool, bad: _Bad) -> str | None:
    if value is None:
        if reads_intensity:
            raise bad("min_intensity", "missing: the weakest intensity that acts, e.g. 5弱")
        return None
    if not reads_intensity:
        raise bad("min_intensity", "only for rules that read intensity bulletins")
    code = intensity_code(value)
    if code is None:
        scale = " ".join(INTENSITY_JA.values())
        raise bad("min_intensity", f"{value!r} is not a JMA intensity ({scale}; or 5-, 5+ ...)")
    return code


def _template(value: object, bad: _Bad) -> str:
    if not isinstance(value, str):
        raise bad("template", "the name of a message template, e.g. earthquake")
    try:
        known = default_composer().list_templates()
    except MessageError as exc:
        raise bad("template", f"the templates cannot be read: {_one_line(str(exc))}") from None
    if value not in known:
        raise bad("template", f"unknown template {value!r} (known: {', '.join(known)})")
    return value


def _variables(value: object, kinds: tuple[str, ...], template: str, bad: _Bad) -> dict[str, str]:
    if not isinstance(value, dict):
        raise bad("variables", "a mapping of template variables (area: 金沢区全域, ...)")
    variables: dict[str, str] = {}
    for key, raw in value.items():
        if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
            raw = "、".join(raw)  # a list of names (shelters) as text lists are written
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise bad(f"variables.{key}", f"{raw!r} is not text")
        text = str(raw)
        for placeholder in _PLACEHOLDER.findall(text):
            if placeholder not in PLACEHOLDERS:
                allowed = " ".join(f"{{{p}}}" for p in PLACEHOLDERS)
                raise bad(
                    f"variables.{key}", f"unknown placeholder {{{placeholder}}} (only {allowed})"
                )
            if not set(kinds) & set(PLACEHOLDERS[placeholder]):
                readers = ", ".join(PLACEHOLDERS[placeholder])
                raise bad(
                    f"variables.{key}",
                    f"{{{placeholder}}} is filled only for {readers} rules; this rule reads "
                    f"{', '.join(kinds)}",
                )
        if "{" in _PLACEHOLDER.sub("", text) or "}" in _PLACEHOLDER.sub("", text):
            raise bad(f"variables.{key}", f"{text!r} has a brace that is not a placeholder")
        variables[str(key)] = text
    trial = {k: _PLACEHOLDER.sub(lambda m: _TRIAL[m.group(1)], v) for k, v in variables.items()}
    try:
        default_composer().normalize(template, trial)
    except MessageError as exc:
        problems = getattr(exc, "problems", ())
        if problems:
            name, why = problems[0]
            raise bad(f"variables.{name}", why) from None
        raise bad("variables", _one_line(str(exc))) from None
    return variables


def _ack_within(value: object, bad: _Bad) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise bad("ack_within", f"{value!r}; a duration such as 15m or 1h")
    try:
        duration = parse_duration(str(value))
    except ValueError as exc:
        raise bad("ack_within", str(exc)) from None
    if duration <= timedelta(0):
        raise bad("ack_within", "must be longer than 0 (e.g. 15m)")
    return duration
