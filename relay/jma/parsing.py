"""Reading a JMA disaster-information XML document (気象庁防災情報XML) safely, into a Bulletin.

Safety, before anything is read:
- at most MAX_DOCUMENT_BYTES (5 MB). The largest JMA documents the relay reads — a nationwide
  震源・震度に関する情報 with every station, a whole prefecture's 気象警報・注意報（Ｈ２７）— are
  about 0.3 MB; 5 MB is well over ten times that and still parses in a fraction of a second,
  while a feed or a file that is not a bulletin cannot make the relay hold more than that;
- no DTD at all, so no entity of any kind (billion laughs, external entities) and no network:
  defusedxml with forbid_dtd, forbid_entities and forbid_external. JMA documents never have one;
- the root must be JMA's Report in JMA's namespace (the Atom feed, or any other XML, is refused).

A Report of a type the relay does not act on (緊急地震速報, 府県天気予報, a type JMA adds later)
is not an error: it parses to kind "unknown", with its Control and Head. A Report whose body
is not as expected simply has fewer areas. Only a document that is not a JMA Report at all
(malformed, hostile, too large, another kind of XML, no Control/Head) raises JmaDocumentError.

Namespaces are JMA's, exactly (xml.kishou.go.jp/jmaxml1/...): the Report and its Control,
informationBasis1 for the Head, body/seismology1 (earthquakes and tsunamis) or
body/meteorology1 (warnings and landslides) for the Body, elementBasis1 (jmx_eb) for values.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from relay.jma.bulletin import INTENSITIES, UNREPORTED, AreaReport, Bulletin

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
TEXT_LIMIT = 500  # Bulletin.text: enough for a headline and its comments, short for a draft

NS_REPORT = "http://xml.kishou.go.jp/jmaxml1/"
NS_HEAD = "http://xml.kishou.go.jp/jmaxml1/informationBasis1/"
NS_SEIS = "http://xml.kishou.go.jp/jmaxml1/body/seismology1/"
NS_MET = "http://xml.kishou.go.jp/jmaxml1/body/meteorology1/"
NS_EB = "http://xml.kishou.go.jp/jmaxml1/elementBasis1/"
NS_ATOM = "http://www.w3.org/2005/Atom"

JST = timezone(timedelta(hours=9))

# Control/Title → kind. Titles JMA writes for the types the relay acts on; anything else is
# "unknown". 震源・震度に関する情報 is also the Control/Title of 遠地地震に関する情報 (its
# Head/Title says which), and then has no intensities.
_TITLES = {
    "震度速報": "intensity",  # VXSE51
    "震源・震度に関する情報": "intensity",  # VXSE53
    "震源に関する情報": "hypocentre",  # VXSE52
    "気象特別警報・警報・注意報": "warning",  # VPWW53
    "気象警報・注意報": "warning",
    "土砂災害警戒情報": "landslide",  # VXWW50 (also in the 2025 new wording)
}
# Title prefixes: 津波警報・注意報・予報a (VTSE41), 津波情報a (VTSE51), 気象警報・注意報（Ｈ２７）
# (VPWW54), 気象警報・注意報（Ｒ０６）（大雨）… (VPWW55–61, 2026 format).
_TITLE_PREFIXES = (
    ("津波警報・注意報・予報", "tsunami"),
    ("津波情報", "tsunami"),
    ("気象警報・注意報（", "warning"),
    ("気象特別警報・警報・注意報", "warning"),
)

LANDSLIDE_OLD = "土砂災害警戒情報"
LANDSLIDE_NEW = "レベル４土砂災害危険警報"

# Kind names that say nothing is in force (VXWW50 なし, warnings 解除/なし) and statuses that
# say a kind is not in force.
_NOTHING = {"", "なし", "解除", "津波なし"}
_NOT_IN_FORCE = {"解除", "なし", "発表警報・注意報はなし"}

_SPACES = re.compile(r"[ \t\u3000]+")


class JmaDocumentError(ValueError):
    """The document was refused; the message says why in one line (malformed, DTD or entity,
    too large, not a JMA Report)."""


def parse(data: bytes) -> Bulletin:
    """The bulletin in `data`, or JmaDocumentError saying why it was refused."""
    root = _root(data)
    control = root.find(f"{{{NS_REPORT}}}Control")
    head = root.find(f"{{{NS_HEAD}}}Head")
    if control is None or head is None:
        raise JmaDocumentError("not a JMA Report: no Control or no Head (informationBasis1)")
    title = _text(control, f"{{{NS_REPORT}}}Title")
    if not title:
        raise JmaDocumentError("not a JMA Report: Control/Title is empty")
    sent = _when(_text(control, f"{{{NS_REPORT}}}DateTime"), UTC)
    reported = _when(_text(head, f"{{{NS_HEAD}}}ReportDateTime"), JST)
    report_at = reported or sent
    sent_at = sent or reported
    if report_at is None or sent_at is None:
        raise JmaDocumentError(
            "not a JMA Report: neither Control/DateTime nor Head/ReportDateTime is a time"
        )
    head_title = _text(head, f"{{{NS_HEAD}}}Title")
    kind = kind_of(title)
    headline = _block(head.findtext(f"{{{NS_HEAD}}}Headline/{{{NS_HEAD}}}Text") or "")
    body = root.find(f"{{{NS_SEIS}}}Body")
    if body is None:
        body = root.find(f"{{{NS_MET}}}Body")
    info_type = _text(head, f"{{{NS_HEAD}}}InfoType")
    areas: tuple[AreaReport, ...] = ()
    if body is not None and info_type != "取消":
        areas = tuple(_areas(kind, body, title, head_title))
    return Bulletin(
        title=title,
        office=_text(control, f"{{{NS_REPORT}}}EditorialOffice"),
        status=_text(control, f"{{{NS_REPORT}}}Status"),
        info_type=info_type,
        info_kind=_text(head, f"{{{NS_HEAD}}}InfoKind"),
        event_id=_text(head, f"{{{NS_HEAD}}}EventID"),
        serial=_text(head, f"{{{NS_HEAD}}}Serial"),
        report_at=report_at,
        sent_at=sent_at,
        kind=kind,
        headline=headline,
        areas=areas,
        hypocentre=_hypocentre(body) if body is not None else "",
        text=_summary_text(headline, body),
        publisher=_text(control, f"{{{NS_REPORT}}}PublishingOffice"),
        head_title=head_title,
    )


def kind_of(title: str) -> str:
    """The relay's kind for a Control/Title: see Bulletin.kind."""
    if title in _TITLES:
        return _TITLES[title]
    for prefix, kind in _TITLE_PREFIXES:
        if title.startswith(prefix):
            return kind
    if "土砂災害危険警報" in title or "土砂災害警戒情報" in title:
        return "landslide"
    return "unknown"


# ---- the document -------------------------------------------------------------------------


def _root(data: bytes) -> Element:
    if not isinstance(data, bytes | bytearray):
        raise JmaDocumentError(f"not a document: {type(data).__name__}, not bytes")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise JmaDocumentError(
            f"too large: {len(data)} bytes; a JMA document is at most {MAX_DOCUMENT_BYTES} "
            "bytes here"
        )
    if not data.strip():
        raise JmaDocumentError("not XML: the document is empty")
    try:
        root: Element = fromstring(
            bytes(data), forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        raise JmaDocumentError(
            f"DTD or entity declared ({type(exc).__name__}); JMA documents never have one"
        ) from None
    except ParseError as exc:
        raise JmaDocumentError(f"not XML: {_line(str(exc))}") from None
    except (ValueError, UnicodeError, LookupError) as exc:
        raise JmaDocumentError(f"not XML: {_line(str(exc))}") from None
    if root.tag != f"{{{NS_REPORT}}}Report":
        if root.tag == f"{{{NS_ATOM}}}feed":
            raise JmaDocumentError("not a JMA Report: this is an Atom feed (fetch its entries)")
        raise JmaDocumentError(f"not a JMA Report: the root element is {_line(root.tag)[:100]}")
    return root


def _line(text: str) -> str:
    return " ".join(text.split())


def _text(parent: Element, path: str) -> str:
    return _line(parent.findtext(path) or "")


def _block(text: str) -> str:
    """Text as JMA writes it, lines kept, each line's spaces tidied, blank lines dropped."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _when(text: str, naive_zone: timezone) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    # JMA always writes the zone (Control in UTC "Z", Head in +09:00); if not, it is those.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=naive_zone)


def _summary_text(headline: str, body: Element | None) -> str:
    parts = [headline] if headline else []
    if body is not None:
        ns = body.tag[1:].partition("}")[0]
        for path in (
            f"{{{ns}}}Text",
            f"{{{ns}}}Comments/{{{ns}}}WarningComment/{{{ns}}}Text",
            f"{{{ns}}}Comments/{{{ns}}}ForecastComment/{{{ns}}}Text",
            f"{{{ns}}}Comments/{{{ns}}}VarComment/{{{ns}}}Text",
            f"{{{ns}}}Comments/{{{ns}}}FreeFormComment",
        ):
            for element in body.findall(path):
                words = _block(element.text or "")
                if words and words not in parts:
                    parts.append(words)
    text = "\n".join(parts)
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def _hypocentre(body: Element) -> str:
    """'駿河湾 M6.6' from Body/Earthquake, where given."""
    quake = body.find(f"{{{NS_SEIS}}}Earthquake")
    if quake is None:
        return ""
    name = _text(quake, f"{{{NS_SEIS}}}Hypocenter/{{{NS_SEIS}}}Area/{{{NS_SEIS}}}Name")
    magnitude = quake.find(f"{{{NS_EB}}}Magnitude")
    size = ""
    if magnitude is not None:
        description = unicodedata.normalize("NFKC", magnitude.get("description") or "").strip()
        value = (magnitude.text or "").strip()
        if description:
            size = description
        elif value and value.lower() != "nan":
            size = f"M{value}"
    return " ".join(part for part in (name, size) if part)


# ---- areas --------------------------------------------------------------------------------


def _areas(kind: str, body: Element, title: str, head_title: str) -> Iterator[AreaReport]:
    if kind == "intensity":
        yield from _intensity_areas(body)
    elif kind == "tsunami":
        yield from _tsunami_areas(body)
    elif kind == "warning":
        yield from _warning_areas(body)
    elif kind == "landslide":
        new_wording = "土砂災害危険警報" in head_title or "土砂災害危険警報" in title
        yield from _landslide_areas(body, LANDSLIDE_NEW if new_wording else LANDSLIDE_OLD)


def _seis(name: str) -> str:
    return f"{{{NS_SEIS}}}{name}"


def _intensity(code: str) -> str | None:
    code = unicodedata.normalize("NFKC", code).strip()
    return code if code in INTENSITIES else None


def _intensity_areas(body: Element) -> Iterator[AreaReport]:
    """Body/Intensity/Observation: Pref > Area > City > IntensityStation, each with its
    intensity (MaxInt, or Int for a station) where JMA gives it. JMA leaves MaxInt out when
    only 震度５弱以上未入電 stations are below it, and writes
    <Condition>震度５弱以上未入電</Condition> on a city where such a station sits beside lower
    readings; both mark it unreported, and so does an unreported city for the area and the
    prefecture that hold it."""
    observation = body.find(f"{_seis('Intensity')}/{_seis('Observation')}")
    if observation is None:
        return
    for pref in observation.findall(_seis("Pref")):
        below: list[AreaReport] = []
        for area in pref.findall(_seis("Area")):
            in_area: list[AreaReport] = []
            for city in area.findall(_seis("City")):
                stations = [
                    AreaReport(
                        code=_text(station, _seis("Code")),
                        name=_text(station, _seis("Name")),
                        scope="station",
                        intensity=_intensity(_text(station, _seis("Int"))),
                        unreported=UNREPORTED in _text(station, _seis("Int")),
                    )
                    for station in city.findall(_seis("IntensityStation"))
                ]
                in_area.append(_place(city, "city", stations))
                in_area.extend(stations)
            below.append(_place(area, "area", in_area))
            below.extend(in_area)
        yield _place(pref, "pref", below)
        yield from below


def _place(element: Element, scope: str, below: list[AreaReport]) -> AreaReport:
    condition = _text(element, _seis("Condition"))
    max_int = _text(element, _seis("MaxInt"))
    return AreaReport(
        code=_text(element, _seis("Code")),
        name=_text(element, _seis("Name")),
        scope=scope,
        intensity=_intensity(max_int),
        unreported=UNREPORTED in condition
        or UNREPORTED in max_int
        or any(r.unreported for r in below if r.scope != "station" or scope == "city"),
    )


_TSUNAMI_GRADES = {"大津波警報": 3, "津波警報": 2, "津波注意報": 1}


def tsunami_grade(name: str) -> int:
    """大津波警報 (also 大津波警報：発表) 3, 津波警報 2, 津波注意報 1; anything else (予報, 解除,
    津波なし) 0."""
    if "解除" in name:
        return 0
    return _TSUNAMI_GRADES.get(name.partition("：")[0].strip(), 0)


def _tsunami_areas(body: Element) -> Iterator[AreaReport]:
    """Body/Tsunami/Forecast/Item: the tsunami forecast area and its Category/Kind/Name (and
    LastKind: a warning or advisory before, none now, is lifted)."""
    forecast = body.find(f"{_seis('Tsunami')}/{_seis('Forecast')}")
    if forecast is None:
        return
    for item in forecast.findall(_seis("Item")):
        kind = _text(item, f"{_seis('Category')}/{_seis('Kind')}/{_seis('Name')}")
        last = _text(item, f"{_seis('Category')}/{_seis('LastKind')}/{_seis('Name')}")
        in_force = () if kind in _NOTHING or "解除" in kind else (kind,)
        lifted: tuple[str, ...] = ()
        if tsunami_grade(last) > 0 and tsunami_grade(kind) == 0:
            lifted = (last,)
        elif "解除" in kind:
            lifted = (last,) if last and last not in _NOTHING else (kind,)
        yield AreaReport(
            code=_text(item, f"{_seis('Area')}/{_seis('Code')}"),
            name=_text(item, f"{_seis('Area')}/{_seis('Name')}"),
            scope="tsunami",
            kinds=in_force,
            lifted=lifted,
        )


def _met(name: str) -> str:
    return f"{{{NS_MET}}}{name}"


def _warning_areas(body: Element) -> Iterator[AreaReport]:
    """Body/Warning[@type="気象警報・注意報（市町村等）"]/Item: the municipality (Area) and each
    Kind's Name and Status — 発表, 継続, 特別警報から警報 … are in force; 解除 is lifted;
    発表警報・注意報はなし and なし are nothing. The same for the 2026 format (VPWW55–61:
    レベル４大雨危険警報, one Kind per Item, so a municipality may come in several Items)."""
    kinds: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
    for warning in body.findall(_met("Warning")):
        if warning.get("type") != "気象警報・注意報（市町村等）":
            continue
        for item in warning.findall(_met("Item")):
            key = (
                _text(item, f"{_met('Area')}/{_met('Code')}"),
                _text(item, f"{_met('Area')}/{_met('Name')}"),
            )
            in_force, lifted = kinds.setdefault(key, ([], []))
            for kind in item.findall(_met("Kind")):
                _sort_kind(kind, in_force, lifted)
    for (code, name), (in_force, lifted) in kinds.items():
        yield AreaReport(
            code=code,
            name=name,
            scope="municipality",
            kinds=tuple(dict.fromkeys(in_force)),
            lifted=tuple(dict.fromkeys(k for k in lifted if k not in in_force)),
        )


def _sort_kind(kind: Element, in_force: list[str], lifted: list[str]) -> None:
    name = _text(kind, _met("Name"))
    status = _text(kind, _met("Status"))
    if status == "解除":
        last = _text(kind, f"{_met('LastKind')}/{_met('Name')}")
        was = name if name not in _NOTHING else last
        if was and was not in _NOTHING:
            lifted.append(was)
    elif status not in _NOT_IN_FORCE and name not in _NOTHING:
        in_force.append(name)


def _landslide_areas(body: Element, named: str) -> Iterator[AreaReport]:
    """Body/Warning[@type="土砂災害警戒情報"]/Item per municipality (横浜市北部 1410011 and
    横浜市南部 1410012 are Yokohama's two halves here). Kind/Name is 警戒 with Status 発表 or
    継続 while it is in force, 解除 when lifted, なし otherwise; the kind is named `named`."""
    for warning in body.findall(_met("Warning")):
        wtype = warning.get("type") or ""
        if "土砂災害" not in wtype:
            continue
        for item in warning.findall(_met("Item")):
            in_force: list[str] = []
            lifted: list[str] = []
            for kind in item.findall(_met("Kind")):
                name = _text(kind, _met("Name"))
                status = _text(kind, _met("Status")) or _text(kind, _met("Condition"))
                if status == "解除" or name == "解除":
                    lifted.append(named)
                elif name not in _NOTHING and status not in _NOT_IN_FORCE:
                    in_force.append(named)
            yield AreaReport(
                code=_text(item, f"{_met('Area')}/{_met('Code')}"),
                name=_text(item, f"{_met('Area')}/{_met('Name')}"),
                scope="municipality",
                kinds=tuple(dict.fromkeys(in_force)),
                lifted=tuple(dict.fromkeys(lifted)),
            )
