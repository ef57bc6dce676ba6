"""Checking and normalising an alert's template variables (SPEC 4.1: strict, before anything
is planned). Values arrive as strings from the CLI (`--var level=4`) or as JSON values from the
API; templates always see one normal form (level an int, shelters a list, intensity "5強").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from relay.messages.catalog import Catalog, EventSpec, VariableSpec
from relay.messages.errors import TemplateVariableError
from relay.messages.evacuation import LEVELS

# JMA seismic intensity scale (震度階級); the common shorthand 5-/5+ is accepted too.
INTENSITIES = ("1", "2", "3", "4", "5弱", "5強", "6弱", "6強", "7")
_INTENSITY_ALIASES = {"5-": "5弱", "5+": "5強", "6-": "6弱", "6+": "6強"}
INTENSITY_EN = {"5弱": "5 Lower", "5強": "5 Upper", "6弱": "6 Lower", "6強": "6 Upper"}
_LIST_SEPARATORS = re.compile(r"[、,，;；\n]")


class _Invalid(ValueError):
    pass


def _no_control(text: str) -> str:
    # A newline or escape in a variable would break the SMS layout or a subject header.
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise _Invalid("must not contain control characters (newlines, tabs)")
    return text


def _as_text(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Invalid(f"must be text, not {type(value).__name__}")
    return str(value).strip()


def _text(spec: VariableSpec, value: object) -> str | None:
    text = _no_control(_as_text(value))
    if len(text) > spec.max_length:
        raise _Invalid(f"is {len(text)} characters; at most {spec.max_length}")
    return text or None


def _text_list(spec: VariableSpec, value: object) -> list[str] | None:
    if isinstance(value, str):
        items = _LIST_SEPARATORS.split(value)
    elif isinstance(value, list | tuple):
        items = [_as_text(v) for v in value]
    else:
        raise _Invalid("must be a list of names or text separated by 、 or ,")
    names = [_no_control(item.strip()) for item in items if item.strip()]
    if len(names) > spec.max_items:
        raise _Invalid(f"has {len(names)} entries; at most {spec.max_items}")
    too_long = [n for n in names if len(n) > spec.max_length]
    if too_long:
        raise _Invalid(f"entry {too_long[0]!r} is longer than {spec.max_length} characters")
    return names or None


def _intensity(_spec: VariableSpec, value: object) -> str:
    text = unicodedata.normalize("NFKC", _as_text(value)).replace(" ", "")
    text = text.removeprefix("震度")
    text = _INTENSITY_ALIASES.get(text, text)
    if text not in INTENSITIES:
        raise _Invalid(f"{value!r} is not a JMA seismic intensity ({' '.join(INTENSITIES)})")
    return text


def _level(_spec: VariableSpec, value: object) -> int:
    if isinstance(value, bool):
        raise _Invalid("must be 3, 4 or 5")
    if isinstance(value, int):
        level = value
    else:
        text = unicodedata.normalize("NFKC", _as_text(value))
        if not text.isdigit():
            raise _Invalid(f"must be 3, 4 or 5 (got {value!r})")
        level = int(text)
    if level not in LEVELS:
        raise _Invalid(f"must be 3, 4 or 5 (got {level})")
    return level


_COERCE = {
    "text": _text,
    "text_list": _text_list,
    "intensity": _intensity,
    "evacuation_level": _level,
}


def normalize(
    catalog: Catalog, event: EventSpec, variables: Mapping[str, object]
) -> dict[str, object]:
    """The variables in normal form, every optional one present (None when not given).
    Raises one TemplateVariableError listing every missing, unknown and invalid variable."""
    problems: list[tuple[str, str]] = []
    allowed = event.allowed
    for name in variables:
        if name not in allowed:
            expected = ", ".join(sorted(allowed)) or "none"
            problems.append((name, f"unknown variable (this template takes: {expected})"))
    values: dict[str, object] = {name: None for name in event.optional}
    for name in (*event.required, *event.optional):
        raw = variables.get(name)
        if raw is None:
            if name in event.required:
                problems.append((name, "required variable is missing"))
            continue
        spec = catalog.variable(name)
        try:
            values[name] = _COERCE[spec.type](spec, raw)
        except _Invalid as exc:
            problems.append((name, str(exc)))
            continue
        if values[name] is None and name in event.required:
            problems.append((name, "required variable is empty"))
    if problems:
        raise TemplateVariableError(event.name, problems)
    return values
