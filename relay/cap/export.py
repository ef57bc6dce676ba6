"""CAP 1.2 out (SPEC 3, 5.2): an Alert as a CAP document. (In: relay/cap/importing.py.)

One <info> per language (ja-JP, en-US and ja-JP-x-easy: easy Japanese is Japanese
with a private-use subtag, as the message catalog names it), `sent` in Asia/Tokyo with +09:00,
the evacuation level as eventCode `evacuationLevel`, one <area> per district of the audience.
What the relay needs to issue the same alert again travels in relay-specific codes that other
CAP consumers can ignore: eventCode `relay:template`, parameters `relay:variable:<name>`
and `relay:reference` (the code recipients quote). Scope is Restricted: recipients are the
ward's registered local leaders, not the public.
"""

from __future__ import annotations

import email.utils
import uuid
from datetime import datetime
from xml.etree.ElementTree import Element, SubElement, tostring

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.cap.schema import NS
from relay.messages import LANGUAGES, MessageError, cap_info
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
# The built-in template of documents relayed as issued (relay/cap/importing.py): their own
# event name stays in every language.
RELAYED_TEMPLATE = "cap-relay"


def cap_tag(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _text(parent: Element, tag: str, text: str) -> Element:
    child = SubElement(parent, cap_tag(tag))
    child.text = text
    return child


def _pair(parent: Element, tag: str, name: str, value: str) -> None:
    pair = SubElement(parent, cap_tag(tag))
    _text(pair, "valueName", name)
    _text(pair, "value", value)


def cap_time(alert: Alert) -> str:
    """CAP times: seconds, no fraction, the zone as +09:00 (the schema's pattern)."""
    return cap_datetime(alert.sent_at)


def cap_datetime(moment: datetime) -> str:
    return moment.astimezone(TOKYO).replace(microsecond=0).isoformat()


def expires_of(alert: Alert) -> datetime | None:
    """When the alert stops being news: the imported document's own <expires>, else the
    relay's acknowledgement deadline (its workflow ends there)."""
    return alert.expires_at or alert.ack_deadline


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
                    "event": alert.event if alert.template == RELAYED_TEMPLATE else info.event,
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
    """The alert as a CAP 1.2 XML document (UTF-8). A cancelled alert exports as its
    cancellation: the Cancel notice the relay sent to those already reached, or, when nobody
    had been reached (no notice was sent), a msgType Cancel of the alert's own texts, sent when
    it was cancelled, referring to it (identifier derived from the alert's, so it is stable)."""
    if alert.state != "cancelled":
        return _document(session, alert, alert.identifier, alert.sent_at, alert.msg_type)
    notice = session.scalar(
        select(Alert).where(Alert.supersedes_id == alert.id, Alert.msg_type == "Cancel")
    )
    if notice is not None:
        return _document(session, notice, notice.identifier, notice.sent_at, notice.msg_type)
    identifier = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, alert.identifier + '#cancel')}"
    references = f"{cap_sender(alert)},{alert.identifier},{cap_time(alert)}"
    sent = alert.closed_at or alert.sent_at
    return _document(session, alert, identifier, sent, "Cancel", references)


def _document(
    session: Session,
    alert: Alert,
    identifier: str,
    sent: datetime,
    msg_type: str,
    references: str | None = None,
) -> bytes:
    root = Element(cap_tag("alert"))
    _text(root, "identifier", identifier)
    _text(root, "sender", cap_sender(alert))
    _text(root, "sent", cap_datetime(sent))
    _text(root, "status", alert.status)
    _text(root, "msgType", msg_type)
    _text(root, "scope", alert.scope)
    if alert.scope == "Restricted":
        _text(root, "restriction", RESTRICTION)
    note = _note(alert)
    if note:
        _text(root, "note", note)
    references = references or _references(session, alert)
    if references:
        _text(root, "references", references)
    for lang, texts in _infos(alert):
        info = SubElement(root, cap_tag("info"))
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
        for tag, moment in (
            ("effective", alert.effective_at),
            ("onset", alert.onset_at),
            ("expires", expires_of(alert)),
        ):
            if moment is not None:
                _text(info, tag, cap_datetime(moment))
        _text(info, "senderName", SENDER_NAME[lang])
        for key in ("headline", "description", "instruction"):
            if texts[key]:
                _text(info, key, texts[key])
        _pair(info, "parameter", REFERENCE_PARAMETER, alert.reference)
        for name, value in sorted(alert.variables.items()):
            _pair(info, "parameter", VARIABLE_PREFIX + name, _variable_text(value))
        for district in _areas(alert):
            area = SubElement(info, cap_tag("area"))
            _text(area, "areaDesc", district)
            _pair(area, "geocode", *WARD_GEOCODE)
    document: bytes = tostring(root, encoding="utf-8", xml_declaration=True, default_namespace=NS)
    return document
