"""CAP 1.2 documents checked against OASIS's own schema, plus what a schema cannot say.

The XSD is OASIS's CAP-v1.2.xsd, shipped unmodified beside this module with its notice
(CAP-v1.2.NOTICE), and read with lxml. The relay's own checks cover only what the XSD leaves
as free text: <references> must be `sender,identifier,sent` triples (the CAP 1.2 spec, 3.2.1),
since updates and cancels are matched through them. The once-per-document rule — a (sender,
identifier) is issued once — is the database's (a unique index, relay/cap/importing.py).

Documents reach here already parsed once by defusedxml with DTDs forbidden (no entities, no
network); lxml parses the same bytes again with entity resolution and the network off.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from lxml import etree

NS = "urn:oasis:names:tc:emergency:cap:1.2"
XSD_PATH = Path(__file__).resolve().parent / "CAP-v1.2.xsd"
# XSD dateTime as CAP restricts it: seconds and a zone, no fraction (the `sent` pattern).
CAP_TIME = re.compile(r"\d\d\d\d-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d")

_TIME_ELEMENT = re.compile(r"Element <(sent|effective|onset|expires)>")
_TIME_EXAMPLE = "2026-11-29T06:30:00+09:00"
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True
)
_lock = threading.RLock()
_schema: etree.XMLSchema | None = None


class CapSchemaError(ValueError):
    """The document is not valid CAP 1.2; the message names the element and the reason."""


def _xsd() -> etree.XMLSchema:
    """The compiled schema, built once per process (about 10 ms)."""
    global _schema
    with _lock:
        if _schema is None:
            _schema = etree.XMLSchema(etree.parse(str(XSD_PATH)))
        return _schema


def _readable(message: str) -> str:
    # lxml names elements as {urn:oasis:names:tc:emergency:cap:1.2}status: say <status>.
    return re.sub(r"'?\{" + re.escape(NS) + r"\}([A-Za-z]+)'?", r"<\1>", message)


def _check_references(root: etree._Element) -> None:
    for element in root.iterfind(f"{{{NS}}}references"):
        for entry in (element.text or "").split():
            parts = entry.split(",")
            if len(parts) != 3 or not all(parts) or not CAP_TIME.fullmatch(parts[2]):
                raise CapSchemaError(
                    f"<references>: {entry!r} is not sender,identifier,sent "
                    f"(e.g. bousai@example.jp,JP-1,{_TIME_EXAMPLE})"
                )


def validate(document: bytes) -> None:
    """Raise CapSchemaError with the first reason the document is not valid CAP 1.2."""
    try:
        root = etree.fromstring(document, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise CapSchemaError(f"not well-formed XML: {exc}") from None
    if root.tag != f"{{{NS}}}alert":
        raise CapSchemaError(f"not a CAP 1.2 alert: the root element is {_readable(root.tag)}")
    with _lock:  # one validation at a time: the schema's error log belongs to the last call
        schema = _xsd()
        valid = schema.validate(root)
        first = None if valid else schema.error_log[0]
    if first is not None:
        message = _readable(first.message)
        if "[facet 'pattern']" in message and _TIME_ELEMENT.search(message):
            message += f" CAP times look like {_TIME_EXAMPLE} (a zone, no fraction, no Z)."
        raise CapSchemaError(f"line {first.line}: {message}")
    _check_references(root)
