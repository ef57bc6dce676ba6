"""The directory CSV (SPEC 6): read and validate every row before anything is written.

One row per contact, identified by (org_code, priority). Every problem is collected with its
line number, column and reason, so an administrator can fix the whole file in one pass.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass, field

from email_validator import EmailNotValidError, validate_email

from relay.directory.phones import PhoneNumberError, parse_phone
from relay.models import LANGUAGES, ORG_KINDS
from relay.spreadsheet import plain_cell

COLUMNS = (
    "org_code",
    "org_name",
    "org_kind",
    "district",
    "parent_code",
    "tags",
    "contact_name",
    "role",
    "priority",
    "mobile",
    "landline",
    "email",
    "language",
)


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.reason}"


class DirectoryFileError(ValueError):
    """The file cannot be imported; `errors` lists every bad row."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} error(s) in the directory file")
        self.errors = errors


@dataclass(frozen=True)
class OrgRecord:
    code: str
    name: str
    kind: str
    district: str
    parent_code: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class PathRecord:
    kind: str  # mobile | landline | email
    address: str
    line_type: str | None


@dataclass(frozen=True)
class ContactRecord:
    org_code: str
    priority: int
    name: str
    role: str
    language: str
    paths: tuple[PathRecord, ...]


@dataclass
class DirectoryFile:
    orgs: dict[str, OrgRecord] = field(default_factory=dict)
    contacts: list[ContactRecord] = field(default_factory=list)


def _text(value: str | None) -> str:
    # The quote that the relay's export (or a spreadsheet user) put before a value goes first,
    # then width and spacing: the cell means what it says (relay/spreadsheet.py).
    return unicodedata.normalize("NFKC", plain_cell((value or "").strip())).strip()


def parse_directory(data: bytes | str) -> DirectoryFile:
    """Parse and validate the whole file; raise DirectoryFileError listing every bad row."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")  # Excel writes a BOM
        except UnicodeDecodeError as exc:
            raise DirectoryFileError(
                [RowError(1, "-", f"not UTF-8 (byte {exc.start}); save the file as UTF-8 CSV")]
            ) from None
    data = data.removeprefix("\ufeff")
    reader = csv.DictReader(io.StringIO(data, newline=""))
    try:
        return _parse_rows(reader)
    except csv.Error as exc:  # e.g. a field over the csv module's 128 KiB limit
        line = reader.reader.line_num
        raise DirectoryFileError([RowError(line, "-", f"not a readable CSV row: {exc}")]) from None


def _parse_rows(reader: csv.DictReader[str]) -> DirectoryFile:
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DirectoryFileError([RowError(1, c, "missing column in the header") for c in missing])
    reader.fieldnames = header

    result = DirectoryFile()
    errors: list[RowError] = []
    seen: dict[tuple[str, int], int] = {}
    for row in reader:
        line = reader.line_num
        if None in row:
            errors.append(RowError(line, "-", "more fields than the header has"))
            continue
        values = {k: _text(v) for k, v in row.items()}
        if not any(values.values()):
            continue  # blank line
        row_errors = _check_row(line, values, result, seen)
        errors.extend(row_errors)
    for org in result.orgs.values():
        if org.parent_code and org.parent_code not in result.orgs:
            errors.append(
                RowError(
                    0, "parent_code", f"{org.code}: parent {org.parent_code} is not in the file"
                )
            )
    if errors:
        raise DirectoryFileError(sorted(errors, key=lambda e: (e.line, e.column)))
    return result


def _check_row(
    line: int, v: dict[str, str], result: DirectoryFile, seen: dict[tuple[str, int], int]
) -> list[RowError]:
    errors: list[RowError] = []

    def bad(column: str, reason: str) -> None:
        errors.append(RowError(line, column, reason))

    for column in ("org_code", "org_name", "org_kind", "contact_name"):
        if not v[column]:
            bad(column, "required")
    if v["org_kind"] and v["org_kind"] not in ORG_KINDS:
        bad("org_kind", f"unknown kind {v['org_kind']!r}; one of {', '.join(ORG_KINDS)}")
    language = v["language"] or "ja"
    if language not in LANGUAGES:
        bad("language", f"unknown language {language!r}; one of {', '.join(LANGUAGES)}")
    priority = 1
    if v["priority"]:
        if v["priority"].isdigit() and 1 <= int(v["priority"]) <= 99:
            priority = int(v["priority"])
        else:
            bad("priority", f"expected a whole number 1-99, got {v['priority']!r}")

    paths: list[PathRecord] = []
    for column in ("mobile", "landline"):
        if not v[column]:
            continue
        try:
            number = parse_phone(v[column])
        except PhoneNumberError as exc:
            bad(column, str(exc))
            continue
        if column == "mobile" and number.line_type != "mobile":
            kind = "a landline" if number.line_type == "landline" else "an IP phone"
            bad(column, f"{v[column]} is {kind}, not a mobile; put it in the landline column")
            continue
        paths.append(PathRecord(column, number.e164, number.line_type))
    if v["email"]:
        try:
            address = validate_email(v["email"], check_deliverability=False).normalized
            paths.append(PathRecord("email", address, None))
        except EmailNotValidError as exc:
            bad("email", str(exc))
    if not (v["mobile"] or v["landline"] or v["email"]):
        bad("mobile", "a contact needs at least one of mobile, landline, email")

    org = OrgRecord(
        code=v["org_code"],
        name=v["org_name"],
        kind=v["org_kind"],
        district=v["district"],
        parent_code=v["parent_code"],
        tags=tuple(sorted({t.strip() for t in v["tags"].split(";") if t.strip()})),
    )
    known = result.orgs.get(org.code)
    if known is not None and known != org and v["org_code"]:
        bad("org_code", f"{org.code} is described differently on an earlier line")
    key = (v["org_code"], priority)
    if key in seen:
        bad(
            "priority",
            f"{org.code} already has a contact with priority {priority} (line {seen[key]})",
        )
    if errors:
        return errors
    seen[key] = line
    result.orgs.setdefault(org.code, org)
    result.contacts.append(
        ContactRecord(
            org_code=org.code,
            priority=priority,
            name=v["contact_name"],
            role=v["role"],
            language=language,
            paths=tuple(paths),
        )
    )
    return errors
