"""The CAP 1.2 XML schema as data, and a validator for parsed documents.

Why not the OASIS XSD itself: the project ships no copy of it (shared/schemas/README.md), and
the relay must refuse an invalid document wherever it runs. This module encodes the same
structure — element order and counts, enumerations, the `sent` pattern, the simple types —
and tests/test_cap.py checks it against the XSD (lxml) on our exports and on generated
documents, valid and broken, so the two cannot drift apart unnoticed.

It works on an ElementTree parsed without comments or processing instructions
(relay/cap_import.py parses with defusedxml: no DTD, no entities). Stricter than the XSD in
corners no real sender uses: no attributes at all (not even xsi:type), nothing after the
trailing signature (libxml2 lets <info> follow it; the schema's sequence does not), and
alerts nested in signatures only so deep.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from xml.etree.ElementTree import Element

NS = "urn:oasis:names:tc:emergency:cap:1.2"
XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"


class CapSchemaError(ValueError):
    """The document is not valid CAP 1.2; the message names the element and the reason."""


@dataclass(frozen=True)
class Simple:
    """A simple type: `kind` is string, enum, datetime, language, integer, decimal or uri."""

    kind: str = "string"
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Field:
    name: str
    type: Simple | tuple[Field, ...]
    min: int = 1
    max: int | None = 1  # None: unbounded
    default: str | None = None  # an empty element has this value (XSD `default`)


STRING = Simple()
DATETIME = Simple("datetime")
_PAIR = (Field("valueName", STRING), Field("value", STRING))


def _enum(*values: str) -> Simple:
    return Simple("enum", values)


def _opt(name: str, kind: Simple = STRING) -> Field:
    return Field(name, kind, min=0)


def _many(name: str, kind: Simple | tuple[Field, ...] = STRING, min_: int = 0) -> Field:
    return Field(name, kind, min=min_, max=None)


RESOURCE = (
    Field("resourceDesc", STRING),
    Field("mimeType", STRING),
    _opt("size", Simple("integer")),
    _opt("uri", Simple("uri")),
    _opt("derefUri"),
    _opt("digest"),
)
AREA = (
    Field("areaDesc", STRING),
    _many("polygon"),
    _many("circle"),
    _many("geocode", _PAIR),
    _opt("altitude", Simple("decimal")),
    _opt("ceiling", Simple("decimal")),
)
CATEGORIES = "Geo Met Safety Security Rescue Fire Health Env Transport Infra CBRNE Other".split()
RESPONSE_TYPES = "Shelter Evacuate Prepare Execute Avoid Monitor Assess AllClear None".split()
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")
INFO = (
    Field("language", Simple("language"), min=0, default="en-US"),
    _many("category", _enum(*CATEGORIES), min_=1),
    Field("event", STRING),
    _many("responseType", _enum(*RESPONSE_TYPES)),
    Field("urgency", _enum(*URGENCIES)),
    Field("severity", _enum(*SEVERITIES)),
    Field("certainty", _enum(*CERTAINTIES)),
    _opt("audience"),
    _many("eventCode", _PAIR),
    _opt("effective", DATETIME),
    _opt("onset", DATETIME),
    _opt("expires", DATETIME),
    _opt("senderName"),
    _opt("headline"),
    _opt("description"),
    _opt("instruction"),
    _opt("web", Simple("uri")),
    _opt("contact"),
    _many("parameter", _PAIR),
    _many("resource", RESOURCE),
    _many("area", AREA),
)
STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
MSG_TYPES = ("Alert", "Update", "Cancel", "Ack", "Error")
SCOPES = ("Public", "Restricted", "Private")
ALERT = (
    Field("identifier", STRING),
    Field("sender", STRING),
    Field("sent", DATETIME),
    Field("status", _enum(*STATUSES)),
    Field("msgType", _enum(*MSG_TYPES)),
    _opt("source"),
    Field("scope", _enum(*SCOPES)),
    _opt("restriction"),
    _opt("addresses"),
    _many("code"),
    _opt("note"),
    _opt("references"),
    _opt("incidents"),
    _many("info", INFO),
)

# XSD regexes: \d is any Unicode digit there, but xs:dateTime and xs:integer take ASCII only.
_SENT = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})([-+])([0-9]{2}):([0-9]{2})"
)
_LANGUAGE = re.compile(r"[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_XML_SPACE = re.compile(r"[ \t\r\n]+")


def _collapse(text: str) -> str:
    """XSD whitespace="collapse" (only XML's four space characters, not Unicode's)."""
    return _XML_SPACE.sub(" ", text).strip(" ")


def _local(tag: str) -> str:
    return tag.rpartition("}")[2] or tag


def _check_datetime(text: str) -> str | None:
    match = _SENT.fullmatch(_collapse(text))
    if match is None:
        return "expected a time like 2026-11-29T17:00:00+09:00 (seconds and a zone, no fraction)"
    year, month, day, hour, minute, second, _, zh, zm = match.groups()
    if (hour, minute, second) == ("24", "00", "00"):
        hour = "00"  # XSD 1.0: 24:00:00 is the end of the day, a valid time
    try:
        datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))  # noqa: DTZ001 - only checks the fields
    except ValueError as exc:
        return f"not a valid date and time ({exc})"
    if int(year) == 0 or int(zm) > 59 or int(zh) * 60 + int(zm) > 14 * 60:
        return "not a valid date and time (year 0000 or zone beyond ±14:00)"
    return None


def _check_simple(kind: Simple, text: str) -> str | None:
    if kind.kind == "enum" and text not in kind.values:
        return f"{text!r} is not one of {', '.join(kind.values)}"
    if kind.kind == "datetime":
        return _check_datetime(text)
    if kind.kind == "language" and not _LANGUAGE.fullmatch(_collapse(text)):
        return f"{text!r} is not a language tag (e.g. ja-JP)"
    if kind.kind == "integer" and not _INTEGER.fullmatch(_collapse(text)):
        return f"{text!r} is not an integer"
    if kind.kind == "decimal" and not _DECIMAL.fullmatch(_collapse(text)):
        return f"{text!r} is not a decimal number"
    return None  # string, uri: any text (URIs are checked where they are used, not here)


def _validate(element: Element, fields: tuple[Field, ...], path: str, top: bool) -> None:
    if element.attrib:
        raise CapSchemaError(f"{path}: no attributes allowed (got {', '.join(element.attrib)})")
    if (element.text or "").strip(" \t\r\n"):
        raise CapSchemaError(f"{path}: text is not allowed here, only elements")
    children = list(element)
    i = 0
    for field in fields:
        count = 0
        while i < len(children) and children[i].tag == f"{{{NS}}}{field.name}":
            count += 1
            if field.max is not None and count > field.max:
                raise CapSchemaError(f"{path}/{field.name}: at most {field.max} allowed")
            _validate_field(children[i], field, f"{path}/{field.name}", count)
            i += 1
        if count < field.min:
            found = f" (found {_describe(children[i])})" if i < len(children) else ""
            raise CapSchemaError(f"{path}: missing <{field.name}> here{found}")
    for child in children[i:]:
        # <alert> ends with any number of XML signature elements (processContents="lax")
        if not (top and child.tag.startswith(f"{{{XMLDSIG}}}")):
            raise CapSchemaError(f"{path}: unexpected {_describe(child)} (wrong place or name)")
        _lax(child, f"{path}/{_local(child.tag)}")
    for child in children:
        if (child.tail or "").strip(" \t\r\n"):
            raise CapSchemaError(f"{path}: text is not allowed here, only elements")


def _validate_field(element: Element, field: Field, path: str, index: int) -> None:
    label = f"{path}[{index}]" if field.max != 1 else path
    if isinstance(field.type, tuple):
        _validate(element, field.type, label, top=False)
        return
    if element.attrib:
        raise CapSchemaError(f"{label}: no attributes allowed")
    if len(element):
        raise CapSchemaError(f"{label}: must be text, not contain elements")
    text = element.text or ""
    if not text and field.default is not None:
        text = field.default
    reason = _check_simple(field.type, text)
    if reason:
        raise CapSchemaError(f"{label}: {reason}")


def _describe(element: Element) -> str:
    tag = element.tag
    if tag.startswith(f"{{{NS}}}"):
        return f"<{_local(tag)}>"
    return f"<{_local(tag)}> in namespace {tag[1:].partition('}')[0] or '(none)'}"


_GLOBAL_LEAVES = {f"{{{NS}}}valueName", f"{{{NS}}}value"}


def _lax(element: Element, path: str) -> None:
    """processContents="lax": inside a signature, only elements the CAP schema declares
    globally (alert, valueName, value) are validated; the rest is skipped."""
    stack = [(element, path)]
    while stack:
        current, where = stack.pop()
        for child in current:
            label = f"{where}/{_local(child.tag)}"
            if child.tag == f"{{{NS}}}alert":
                _validate(child, ALERT, label, top=True)
            elif child.tag in _GLOBAL_LEAVES:
                _validate_field(child, Field(_local(child.tag), STRING), label, 1)
            else:
                stack.append((child, label))


def validate(root: Element) -> None:
    """Raise CapSchemaError with the first reason the document is not valid CAP 1.2."""
    if root.tag != f"{{{NS}}}alert":
        raise CapSchemaError(f"not a CAP 1.2 alert: the root element is {_describe(root)}")
    try:
        _validate(root, ALERT, "alert", top=True)
    except RecursionError:  # alerts nested in signatures nested in alerts...
        raise CapSchemaError("alert: nested too deeply") from None
