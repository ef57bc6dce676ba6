"""CAP 1.2 in (SPEC 5.2): a CAP document as an issue, with the audience and channels given
alongside (CAP has no place for them).

Parsed with defusedxml with DTDs forbidden, so no external entities and no entity expansion:
XXE and billion-laughs documents are refused before anything is built. Then checked against
OASIS's CAP 1.2 schema (relay/cap/schema.py) and mapped to an IssueRequest.

A document that names one of the relay's templates (eventCode `relay:template`, or its <event>
name) is sent in that template's words, with variables from parameters `relay:variable:NAME`
(eventCode `evacuationLevel` and <areaDesc> fill `level` and `area` when absent). Any other
document is relayed as issued, through the built-in `cap-relay` template: its own headline,
description and instruction (the Japanese info first, an en-* info as the English text), its
own event, category, urgency, severity and certainty — and only when one of its areas covers
the ward (relay/cap/areas.py). Any document with areas must cover the ward.

Only msgType Alert with status Actual, Exercise or Test is relayed: updates and cancels of the
relay's own alerts go through their endpoints. An expired document is refused. A document
(sender, identifier) is issued once. The relay recognises its own exports (its sender and one
of its identifiers): re-issuing one is a deliberate resend, so the <expires> the export took
from the original's acknowledgement deadline does not refuse it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from relay import audit
from relay.alerts.issuing import CHANNELS, IssueRequest, issue_alert
from relay.cap.areas import Area, any_covers_ward
from relay.cap.export import (
    LANGUAGE_OF,
    LEVEL_CODE,
    RELAYED_TEMPLATE,
    TEMPLATE_CODE,
    VARIABLE_PREFIX,
    cap_sender,
    cap_tag,
)
from relay.cap.schema import CapSchemaError, validate
from relay.config import Settings
from relay.directory.audience import Audience
from relay.messages import default_composer
from relay.models import Alert
from relay.timefmt import local

RELAYED_STATUSES = ("Actual", "Exercise", "Test")
IMPORT_ACTION = "alert.import_cap"


class CapImportError(ValueError):
    """The document cannot be relayed; the message says why. Nothing was written."""


class AlreadyImported(CapImportError):
    """This document was issued before; `alert_id` is the alert it became."""

    def __init__(self, message: str, alert_id: int) -> None:
        super().__init__(message)
        self.alert_id = alert_id


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
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    # A relayed-as-issued document's own event and CAP codes (None: the template's).
    cap_fields: dict[str, str] | None = None


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
        validate(data)
    except CapSchemaError as exc:
        raise CapImportError(f"not valid CAP 1.2: {exc}") from None
    return root


def _child_text(element: Element, tag: str) -> str | None:
    child = element.find(cap_tag(tag))
    return child.text or "" if child is not None else None


def _pairs(info: Element, tag: str) -> list[tuple[str, str]]:
    return [
        (_child_text(p, "valueName") or "", _child_text(p, "value") or "")
        for p in info.findall(cap_tag(tag))
    ]


def _language_of(info: Element) -> str:
    """The relay's language of an info block: any en-* is English (CAP's default is en-US)."""
    code = (_child_text(info, "language") or "en-US").strip().lower()
    return LANGUAGE_OF.get(code, "en" if code.startswith("en") else code)


def _choose_info(root: Element) -> tuple[str, Element]:
    infos = root.findall(cap_tag("info"))
    if not infos:
        raise CapImportError("the document has no <info>: nothing to tell recipients")
    by_language: dict[str, Element] = {}
    for info in infos:
        by_language.setdefault(_language_of(info), info)
    # Japanese first: it is the relay's primary language and its templates' reference text.
    for lang in ("ja", "en", "ja-easy"):
        if lang in by_language:
            return lang, by_language[lang]
    return "ja", infos[0]


def _template(info: Element) -> str:
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
    return RELAYED_TEMPLATE


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
    areas = [a.text or "" for a in info.iterfind(f"{cap_tag('area')}/{cap_tag('areaDesc')}")]
    if "area" in allowed and "area" not in variables and any(a.strip() for a in areas):
        variables["area"] = "、".join(a.strip() for a in areas if a.strip())
    return variables


def _areas(root: Element) -> list[Area]:
    """Every <area> of every <info>: the Japanese info may name the area the English omits."""
    areas = []
    for element in root.iterfind(f"{cap_tag('info')}/{cap_tag('area')}"):
        areas.append(
            Area(
                desc=_child_text(element, "areaDesc") or "",
                geocodes=tuple(_pairs(element, "geocode")),
                polygons=tuple(p.text or "" for p in element.findall(cap_tag("polygon"))),
                circles=tuple(c.text or "" for c in element.findall(cap_tag("circle"))),
            )
        )
    return areas


def _check_areas(root: Element, template: str) -> None:
    areas = _areas(root)
    if not areas:
        if template == RELAYED_TEMPLATE:
            raise CapImportError(
                "refused: the document names no <area>, so the relay cannot tell that it "
                "concerns 金沢区; it relays as issued only alerts for the ward"
            )
        return  # the relay's own words, to the audience the operator chose
    if not any_covers_ward(areas):
        # each info block repeats its areas: name each once, in order, at most five
        unique = dict.fromkeys(a.desc.strip() for a in areas if a.desc.strip())
        names = "、".join(list(unique)[:5]) or "(no areaDesc)"
        raise CapImportError(
            f"refused: the document's areas ({names}) do not include 金沢区 — by geocode "
            "(JIS X 0402 141089/14108, JMA 1410800, or 横浜市/神奈川県), by name, or by a polygon "
            "or circle around the ward office"
        )


def _clip(text: str | None, variable: str) -> str | None:
    """One line (variables may not hold control characters), cut with … at the variable's
    max_length in the catalog: a long bulletin is still relayed, and the email points to the
    original."""
    limit = default_composer().catalog.variables[variable].max_length
    flat = " ".join((text or "").split())
    if not flat:
        return None
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _as_issued(root: Element, info: Element) -> tuple[dict[str, str], dict[str, str]]:
    """The variables and CAP fields of a document relayed in its own words: the chosen info
    (Japanese first) gives the Japanese text, an en-* info the English."""
    english = next(
        (i for i in root.findall(cap_tag("info")) if _language_of(i) == "en" and i is not info),
        None,
    )
    sender = (_child_text(info, "senderName") or _child_text(root, "sender") or "").strip()
    values: dict[str, str | None] = {
        "source": _clip(sender, "source"),
        "subject": _clip(_child_text(info, "event"), "subject"),
    }
    for key in ("headline", "description", "instruction"):
        values[key] = _clip(_child_text(info, key), key)
        if english is not None:
            values[f"{key}_en"] = _clip(_child_text(english, key), f"{key}_en")
    # A document without a headline still says what happened: its event.
    values["headline"] = values["headline"] or values["subject"]
    fields = {
        "event": values["subject"] or "",
        "category": _child_text(info, "category") or "Other",
        "urgency": _child_text(info, "urgency") or "Unknown",
        "severity": _child_text(info, "severity") or "Unknown",
        "certainty": _child_text(info, "certainty") or "Unknown",
        "response_type": _child_text(info, "responseType") or "",
    }
    return {k: v for k, v in values.items() if v}, fields


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
    times = {tag: _time(info, tag) for tag in ("effective", "onset", "expires")}
    template = _template(info)
    _check_areas(root, template)
    cap_fields = None
    if template == RELAYED_TEMPLATE:
        own_words, cap_fields = _as_issued(root, info)
        variables = _variables(info, template) or own_words  # the relay's own export: as it was
    else:
        variables = _variables(info, template)
    return CapDocument(
        identifier=_child_text(root, "identifier") or "",
        sender=_child_text(root, "sender") or "",
        status=status,
        msg_type=msg_type,
        note=_child_text(root, "note"),
        language=lang,
        template=template,
        variables=variables,
        cap_fields=cap_fields,
        **times,
    )


def _time(info: Element, tag: str) -> datetime | None:
    """A CAP time of the info block (the schema has checked its shape: zone, no fraction)."""
    text = (_child_text(info, tag) or "").strip()
    return datetime.fromisoformat(text).astimezone(UTC) if text else None


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
        cap_fields=document.cap_fields,
    )


def _earlier_import(session: Session, document: CapDocument) -> int | None:
    """The alert an earlier import of the same (sender, identifier) became, if any."""
    return session.scalar(
        select(Alert.id).where(
            Alert.source_sender == document.sender,
            Alert.source_identifier == document.identifier,
        )
    )


def _own_original(session: Session, document: CapDocument) -> Alert | None:
    """The relay's own alert this document is an export of (its identifier and sender)."""
    for alert in session.scalars(select(Alert).where(Alert.identifier == document.identifier)):
        if cap_sender(alert) == document.sender:
            return alert
    return None


def _check_expiry(document: CapDocument, own_deadline: bool, now: datetime) -> None:
    """An expired document is refused — except the relay's own export of an alert that had no
    <expires> of its own (`own_deadline`): that one's <expires> is the acknowledgement
    deadline the relay put there, and re-issuing the alert after it is the point."""
    if document.expires is None or document.expires > now or own_deadline:
        return
    raise CapImportError(
        f"refused: the document expired at {local(document.expires)} (Asia/Tokyo); "
        "nothing is sent for an alert that is over"
    )


def import_alert(
    session: Session,
    settings: Settings,
    data: bytes,
    audience: Audience,
    channels: Sequence[str],
    mode: str,
    ack_within: timedelta,
    actor: str,
) -> Alert:
    """Issue the alert a CAP document asks for, audited like any issue plus the document's
    origin. The same document again (a retry upstream) is refused: one alert per message."""
    document = read_document(data)
    earlier = _earlier_import(session, document)
    if earlier is not None:
        raise AlreadyImported(
            f"CAP {document.identifier} from {document.sender} was already issued as alert "
            f"{earlier}",
            earlier,
        )
    original = _own_original(session, document)
    own_deadline = original is not None and original.expires_at is None
    _check_expiry(document, own_deadline, datetime.now(UTC))
    request = issue_request(document, audience, channels, mode, ack_within, issued_by=actor)
    alert = issue_alert(session, settings, request)
    try:
        with session.begin_nested():
            alert.source_sender, alert.source_identifier = document.sender, document.identifier
            alert.effective_at, alert.onset_at = document.effective, document.onset
            # A re-issue of the relay's own alert ends at its own deadline, not the original's.
            alert.expires_at = None if own_deadline else document.expires
            session.flush()
    except IntegrityError:
        # Two copies at once: the other committed first (PostgreSQL waited for it on the
        # unique index). The caller's transaction is rolled back, so nothing of this one stays.
        with session.no_autoflush:  # this alert still holds the duplicate pair in memory
            winner = _earlier_import(session, document)
        raise AlreadyImported(
            f"CAP {document.identifier} from {document.sender} was already issued as alert "
            f"{winner}",
            winner or 0,
        ) from None
    audit.record(
        session,
        actor,
        IMPORT_ACTION,
        target=f"alert {alert.id}",
        summary=f"from CAP {document.identifier} ({document.sender})"
        + (f", a re-issue of alert {original.id}" if original is not None else ""),
        alert_id=alert.id,
        source_identifier=document.identifier,
        source_sender=document.sender,
    )
    return alert
