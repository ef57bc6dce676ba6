"""CAP 1.2 in (SPEC 5.2): a CAP document as an issue, with the audience and channels given
alongside (CAP has no place for them).

Parsed with defusedxml with DTDs forbidden, so no external entities and no entity expansion:
XXE and billion-laughs documents are refused before anything is built. Then checked against
OASIS's CAP 1.2 schema (relay/cap/schema.py) and mapped to an IssueRequest. The texts recipients
get always come from the relay's templates: the document chooses the template (eventCode
`relay:template`, or its <event> name) and the variables (parameters `relay:variable:NAME`;
eventCode `evacuationLevel` and <areaDesc> fill `level` and `area` when absent). Only msgType
Alert with status Actual, Exercise or Test is relayed: updates and cancels of the relay's own
alerts go through their endpoints. A document (sender, identifier) is issued once.
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
from relay.cap.export import LANGUAGE_OF, LEVEL_CODE, TEMPLATE_CODE, VARIABLE_PREFIX, cap_tag
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


def _choose_info(root: Element) -> tuple[str, Element]:
    infos = root.findall(cap_tag("info"))
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
    areas = [a.text or "" for a in info.iterfind(f"{cap_tag('area')}/{cap_tag('areaDesc')}")]
    if "area" in allowed and "area" not in variables and any(a.strip() for a in areas):
        variables["area"] = "、".join(a.strip() for a in areas if a.strip())
    return variables


def read_document(data: bytes, now: datetime | None = None) -> CapDocument:
    """A valid CAP 1.2 alert the relay can issue, or CapImportError with the reason (an
    expired document included: its <expires> is before `now`)."""
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
    expires = times["expires"]
    if expires is not None and expires <= (now or datetime.now(UTC)):
        raise CapImportError(
            f"refused: the document expired at {local(expires)} (Asia/Tokyo); "
            "nothing is sent for an alert that is over"
        )
    template = _template(info)
    return CapDocument(
        identifier=_child_text(root, "identifier") or "",
        sender=_child_text(root, "sender") or "",
        status=status,
        msg_type=msg_type,
        note=_child_text(root, "note"),
        language=lang,
        template=template,
        variables=_variables(info, template),
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
    )


def _earlier_import(session: Session, document: CapDocument) -> int | None:
    """The alert an earlier import of the same (sender, identifier) became, if any."""
    return session.scalar(
        select(Alert.id).where(
            Alert.source_sender == document.sender,
            Alert.source_identifier == document.identifier,
        )
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
    request = issue_request(document, audience, channels, mode, ack_within, issued_by=actor)
    alert = issue_alert(session, settings, request)
    try:
        with session.begin_nested():
            alert.source_sender, alert.source_identifier = document.sender, document.identifier
            alert.effective_at, alert.onset_at = document.effective, document.onset
            alert.expires_at = document.expires
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
        summary=f"from CAP {document.identifier} ({document.sender})",
        alert_id=alert.id,
        source_identifier=document.identifier,
        source_sender=document.sender,
    )
    return alert
