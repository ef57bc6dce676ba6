"""CAP 1.2 in and out (SPEC 3, 5.2): an Alert as a CAP document, a CAP document as an issue.

Export: one <info> per language (ja-JP, en-US and ja-JP-x-easy: easy Japanese is Japanese
with a private-use subtag, as the message catalog names it), `sent` in Asia/Tokyo with +09:00,
the evacuation level as eventCode `evacuationLevel`, one <area> per district of the audience.
What the relay needs to issue the same alert again travels in relay-specific codes that other
CAP consumers can ignore: eventCode `relay:template`, parameters `relay:variable:<name>`
and `relay:reference` (the code recipients quote).

Import: parsed with defusedxml (no DTD at all, so no external entities and no entity
expansion: XXE and billion-laughs documents are refused before anything is built), checked
against the CAP 1.2 schema (relay/cap_schema.py), then mapped to an IssueRequest. The texts
recipients get always come from the relay's templates, so the CAP fields of the new alert
are the template's; the document chooses the template (eventCode `relay:template`, or its
<event> name) and its variables. Only msgType Alert with status Actual, Exercise or Test
is relayed: updates and cancels of the relay's own alerts go through their endpoints.
"""

from __future__ import annotations

import email.utils
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.audience import Audience
from relay.cap_schema import NS, CapSchemaError, validate
from relay.issuing import CHANNELS, IssueRequest
from relay.messages import LANGUAGES, MessageError, cap_info, default_composer
from relay.models import Alert
from relay.timefmt import TOKYO

MEDIA_TYPE = "application/cap+xml"
CAP_LANGUAGE = {"ja": "ja-JP", "en": "en-US", "ja-easy": "ja-JP-x-easy"}
LANGUAGE_OF = {code.lower(): lang for lang, code in CAP_LANGUAGE.items()}
SENDER_NAME = {"ja": "金沢区役所", "en": "Kanazawa Ward Office", "ja-easy": "金沢区役所"}
# The ward's local government code (JIS X 0402): 横浜市金沢区.
WARD_GEOCODE = ("JISX0402", "14108")
RESTRICTION = (
    "金沢区の地域防災関係者（自治会・町内会、地域防災拠点、施設）向け"
    " / for the ward's registered local leaders"
)
TEMPLATE_CODE = "relay:template"
VARIABLE_PREFIX = "relay:variable:"
REFERENCE_PARAMETER = "relay:reference"
LEVEL_CODE = "evacuationLevel"
RELAYED_STATUSES = ("Actual", "Exercise", "Test")


class CapImportError(ValueError):
    """The document cannot be relayed; the message says why. Nothing was written."""


# --- export --------------------------------------------------------------------------------


def _cap(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _text(parent: Element, tag: str, text: str) -> Element:
    child = SubElement(parent, _cap(tag))
    child.text = text
    return child


def _pair(parent: Element, tag: str, name: str, value: str) -> None:
    pair = SubElement(parent, _cap(tag))
    _text(pair, "valueName", name)
    _text(pair, "value", value)


def cap_time(alert: Alert) -> str:
    """CAP times: seconds, no fraction, the zone as +09:00 (the schema's pattern)."""
    return alert.sent_at.astimezone(TOKYO).replace(microsecond=0).isoformat()


def cap_sender(alert: Alert) -> str:
    """The bare address: CAP forbids spaces and '<' in <sender>, a display name has both."""
    return email.utils.parseaddr(alert.sender)[1] or alert.sender


def _note(alert: Alert) -> str | None:
    note = alert.note
    if alert.drill_run_id is not None and f"drill run {alert.drill_run_id}" not in (note or ""):
        note = f"drill run {alert.drill_run_id}" + (f": {note}" if note else "")
    return note


def _references(session: Session, alert: Alert) -> str | None:
    """CAP references are `sender,identifier,sent` triples separated by spaces."""
    if not alert.references:
        return None
    earlier = {
        a.identifier: a
        for a in session.scalars(select(Alert).where(Alert.identifier.in_(alert.references)))
    }
    parts = []
    for identifier in alert.references:
        ref = earlier.get(identifier)
        # Always one of ours in practice; a bare identifier beats a made-up sender or time.
        parts.append(f"{cap_sender(ref)},{identifier},{cap_time(ref)}" if ref else identifier)
    return " ".join(parts)


def _variable_text(value: object) -> str:
    if isinstance(value, list | tuple):
        return "、".join(str(v) for v in value)
    return str(value)


def _infos(alert: Alert) -> list[tuple[str, dict[str, str]]]:
    """The info texts per language: Japanese as stored on the alert, the others rendered
    from the same template and variables, dated the day the alert was sent (the evacuation
    level's label changed on 2021-05-20)."""
    stored = {
        "event": alert.event,
        "headline": alert.headline,
        "description": alert.description,
        "instruction": alert.instruction,
    }
    infos = [("ja", stored)]
    sent_on = alert.sent_at.astimezone(TOKYO).date()
    for lang in LANGUAGES:
        if lang == "ja":
            continue
        try:
            info = cap_info(alert.template, lang, alert.variables, on=sent_on)
        except MessageError:
            continue  # a template gone from the catalog: the Japanese info still says it all
        infos.append(
            (
                lang,
                {
                    "event": info.event,
                    "headline": info.headline,
                    "description": info.description,
                    "instruction": info.instruction,
                },
            )
        )
    return infos


def _areas(alert: Alert) -> list[str]:
    districts = [str(d) for d in alert.audience.get("districts", ()) if str(d).strip()]
    return districts or [alert.area_desc or "金沢区"]


def export_alert(session: Session, alert: Alert) -> bytes:
    """The alert as a CAP 1.2 XML document (UTF-8)."""
    root = Element(_cap("alert"))
    _text(root, "identifier", alert.identifier)
    _text(root, "sender", cap_sender(alert))
    _text(root, "sent", cap_time(alert))
    _text(root, "status", alert.status)
    _text(root, "msgType", alert.msg_type)
    _text(root, "scope", alert.scope)
    if alert.scope == "Restricted":
        _text(root, "restriction", RESTRICTION)
    note = _note(alert)
    if note:
        _text(root, "note", note)
    references = _references(session, alert)
    if references:
        _text(root, "references", references)
    for lang, texts in _infos(alert):
        info = SubElement(root, _cap("info"))
        _text(info, "language", CAP_LANGUAGE[lang])
        _text(info, "category", alert.category)
        _text(info, "event", texts["event"])
        if alert.response_type:
            _text(info, "responseType", alert.response_type)
        _text(info, "urgency", alert.urgency)
        _text(info, "severity", alert.severity)
        _text(info, "certainty", alert.certainty)
        _pair(info, "eventCode", TEMPLATE_CODE, alert.template)
        if alert.evacuation_level is not None:
            _pair(info, "eventCode", LEVEL_CODE, str(alert.evacuation_level))
        _text(info, "senderName", SENDER_NAME[lang])
        for key in ("headline", "description", "instruction"):
            if texts[key]:
                _text(info, key, texts[key])
        _pair(info, "parameter", REFERENCE_PARAMETER, alert.reference)
        for name, value in sorted(alert.variables.items()):
            _pair(info, "parameter", VARIABLE_PREFIX + name, _variable_text(value))
        for district in _areas(alert):
            area = SubElement(info, _cap("area"))
            _text(area, "areaDesc", district)
            _pair(area, "geocode", *WARD_GEOCODE)
    document: bytes = tostring(root, encoding="utf-8", xml_declaration=True, default_namespace=NS)
    return document


# --- import --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CapDocument:
    """What the relay takes from a valid CAP document."""

    identifier: str
    sender: str
    status: str
    msg_type: str
    note: str | None
    language: str  # the info block the template and variables were read from
    template: str
    variables: dict[str, str]


def parse_document(data: bytes) -> Element:
    """Parse without DTDs, entities or network; raise CapImportError saying why not."""
    try:
        root: Element = SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise CapImportError(
            f"refused: the document has a DTD or entity declaration ({type(exc).__name__}); "
            "CAP documents need neither"
        ) from None
    except (ParseError, ValueError, LookupError) as exc:
        raise CapImportError(f"not well-formed XML: {exc}") from None
    try:
        validate(root)
    except CapSchemaError as exc:
        raise CapImportError(f"not valid CAP 1.2: {exc}") from None
    return root


def _child_text(element: Element, tag: str) -> str | None:
    child = element.find(_cap(tag))
    return child.text or "" if child is not None else None


def _pairs(info: Element, tag: str) -> list[tuple[str, str]]:
    return [
        (_child_text(p, "valueName") or "", _child_text(p, "value") or "")
        for p in info.findall(_cap(tag))
    ]


def _choose_info(root: Element) -> tuple[str, Element]:
    infos = root.findall(_cap("info"))
    if not infos:
        raise CapImportError("the document has no <info>: nothing to tell recipients")
    by_language: dict[str, Element] = {}
    for info in infos:
        code = (_child_text(info, "language") or "en-US").strip().lower()
        by_language.setdefault(LANGUAGE_OF.get(code, code), info)
    # Japanese first: it is the relay's primary language and its templates' reference text.
    for lang in ("ja", "en", "ja-easy"):
        if lang in by_language:
            return lang, by_language[lang]
    return "ja", infos[0]


def _template(info: Element, lang: str) -> str:
    composer = default_composer()
    known = composer.list_templates()
    codes = dict(_pairs(info, "eventCode"))
    if TEMPLATE_CODE in codes:
        name = codes[TEMPLATE_CODE].strip()
        if name not in known:
            raise CapImportError(
                f"eventCode {TEMPLATE_CODE}: unknown template {name!r} (known: {', '.join(known)})"
            )
        return name
    event = (_child_text(info, "event") or "").strip()
    for name in known:
        if event and event in composer.spec(name).cap.event.values():
            return name
    raise CapImportError(
        f"cannot tell which template <event>{event}</event> is: add an eventCode "
        f"{TEMPLATE_CODE} with one of {', '.join(known)}"
    )


def _variables(info: Element, template: str) -> dict[str, str]:
    allowed = default_composer().spec(template).allowed
    variables = {
        name.removeprefix(VARIABLE_PREFIX): value
        for name, value in _pairs(info, "parameter")
        if name.startswith(VARIABLE_PREFIX)
    }
    codes = dict(_pairs(info, "eventCode"))
    if "level" in allowed and "level" not in variables and LEVEL_CODE in codes:
        variables["level"] = codes[LEVEL_CODE].strip()
    areas = [a.text or "" for a in info.iterfind(f"{_cap('area')}/{_cap('areaDesc')}")]
    if "area" in allowed and "area" not in variables and any(a.strip() for a in areas):
        variables["area"] = "、".join(a.strip() for a in areas if a.strip())
    return variables


def read_document(data: bytes) -> CapDocument:
    """A valid CAP 1.2 alert the relay can issue, or CapImportError with the reason."""
    root = parse_document(data)
    status = _child_text(root, "status") or ""
    msg_type = _child_text(root, "msgType") or ""
    if status not in RELAYED_STATUSES:
        raise CapImportError(f"status {status}: the relay issues Actual, Exercise or Test only")
    if msg_type != "Alert":
        raise CapImportError(
            f"msgType {msg_type}: only Alert can be imported; update or cancel an alert with "
            "POST /api/v1/alerts/{id}/update or /cancel"
        )
    lang, info = _choose_info(root)
    template = _template(info, lang)
    return CapDocument(
        identifier=_child_text(root, "identifier") or "",
        sender=_child_text(root, "sender") or "",
        status=status,
        msg_type=msg_type,
        note=_child_text(root, "note"),
        language=lang,
        template=template,
        variables=_variables(info, template),
    )


def issue_request(
    document: CapDocument,
    audience: Audience,
    channels: Sequence[str] = CHANNELS,
    mode: str = "cascade",
    ack_within: timedelta = timedelta(minutes=15),
    issued_by: str = "cap",
) -> IssueRequest:
    """The issue the document asks for, to the audience and on the channels given with it."""
    return IssueRequest(
        template=document.template,
        audience=audience,
        variables=document.variables,
        channels=tuple(channels),
        mode=mode,
        ack_within=ack_within,
        status=document.status,
        issued_by=issued_by,
        note=document.note,
    )
