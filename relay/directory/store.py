"""The directory: import a CSV to match it exactly, export it, summarise it."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from relay import audit
from relay.directory.csv_format import COLUMNS, ContactRecord, DirectoryFile, OrgRecord
from relay.models import Contact, ContactPath, Organization
from relay.spreadsheet import safe_cell


@dataclass
class ImportChanges:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.deactivated)

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "deactivated": len(self.deactivated),
            "unchanged": self.unchanged,
        }


def _org_fields(rec: OrgRecord) -> dict[str, Any]:
    return {"name": rec.name, "kind": rec.kind, "district": rec.district, "tags": list(rec.tags)}


def _contact_fields(rec: ContactRecord) -> dict[str, Any]:
    return {"name": rec.name, "role": rec.role, "language": rec.language}


def apply_directory(
    session: Session, parsed: DirectoryFile, actor: str, source: str = ""
) -> ImportChanges:
    """Make the directory match the file: add, update, deactivate (never delete: alerts refer
    to contacts). A file identical to the directory changes nothing, not even timestamps."""
    changes = ImportChanges()
    orgs = {o.code: o for o in session.scalars(select(Organization))}
    for code, org_rec in parsed.orgs.items():
        org = orgs.get(code)
        wanted = _org_fields(org_rec) | {"active": True}
        if org is None:
            org = Organization(code=code, **wanted)
            session.add(org)
            orgs[code] = org
            changes.added.append(f"org {code}")
        elif _differs(org, wanted):
            _assign(org, wanted)
            changes.updated.append(f"org {code}")
    session.flush()
    for code, org_rec in parsed.orgs.items():
        parent_id = orgs[org_rec.parent_code].id if org_rec.parent_code else None
        if orgs[code].parent_id != parent_id:
            orgs[code].parent_id = parent_id
            if f"org {code}" not in changes.added:
                changes.updated.append(f"org {code} parent")
    for code, org in orgs.items():
        if code not in parsed.orgs and org.active:
            org.active = False
            changes.deactivated.append(f"org {code}")

    contacts = {
        (c.organization.code, c.priority): c
        for c in session.scalars(
            select(Contact).options(selectinload(Contact.paths), selectinload(Contact.organization))
        )
    }
    wanted_keys = set()
    for rec in parsed.contacts:
        key = (rec.org_code, rec.priority)
        wanted_keys.add(key)
        label = f"contact {rec.org_code}#{rec.priority}"
        contact = contacts.get(key)
        fields = _contact_fields(rec) | {"active": True}
        if contact is None:
            contact = Contact(organization=orgs[rec.org_code], priority=rec.priority, **fields)
            contact.paths = [
                ContactPath(kind=p.kind, address=p.address, line_type=p.line_type)
                for p in rec.paths
            ]
            session.add(contact)
            changes.added.append(label)
            continue
        touched = _differs(contact, fields)
        _assign(contact, fields)
        touched = _sync_paths(contact, rec) or touched
        if touched:
            changes.updated.append(label)
        else:
            changes.unchanged += 1
    for key, contact in contacts.items():
        if key not in wanted_keys and contact.active:
            contact.active = False
            changes.deactivated.append(f"contact {key[0]}#{key[1]}")
    session.flush()
    audit.record(
        session,
        actor,
        "directory.import",
        target=source,
        summary=(
            f"{len(changes.added)} added, {len(changes.updated)} updated, "
            f"{len(changes.deactivated)} deactivated"
        ),
        **changes.as_dict(),
    )
    return changes


def _sync_paths(contact: Contact, rec: ContactRecord) -> bool:
    """Update the contact's paths in place, one per kind (the unique key), so no flush ever
    holds two paths of one kind."""
    wanted = {p.kind: p for p in rec.paths}
    changed = False
    for path in list(contact.paths):
        want = wanted.pop(path.kind, None)
        if want is None:
            contact.paths.remove(path)
            changed = True
        elif (path.address, path.line_type) != (want.address, want.line_type):
            path.address, path.line_type = want.address, want.line_type
            changed = True
    for want in wanted.values():
        contact.paths.append(
            ContactPath(kind=want.kind, address=want.address, line_type=want.line_type)
        )
        changed = True
    return changed


def _differs(obj: object, wanted: dict[str, Any]) -> bool:
    return any(getattr(obj, k) != v for k, v in wanted.items())


def _assign(obj: object, wanted: dict[str, Any]) -> None:
    for k, v in wanted.items():
        if getattr(obj, k) != v:
            setattr(obj, k, v)


def active_contacts(session: Session, district: str | None = None) -> list[Contact]:
    stmt = (
        select(Contact)
        .join(Contact.organization)
        .where(Contact.active, Organization.active)
        .options(selectinload(Contact.paths), selectinload(Contact.organization))
        .order_by(Organization.code, Contact.priority)
    )
    if district:
        stmt = stmt.where(Organization.district == district)
    return list(session.scalars(stmt))


def export_csv(session: Session) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for c in active_contacts(session):
        org = c.organization
        parent = org.parent.code if org.parent else ""
        paths = {p.kind: p.address for p in c.paths}
        row = [
            org.code,
            org.name,
            org.kind,
            org.district,
            parent,
            ";".join(org.tags),
            c.name,
            c.role,
            c.priority,
            paths.get("mobile", ""),
            paths.get("landline", ""),
            paths.get("email", ""),
            c.language,
        ]
        writer.writerow([safe_cell(cell) for cell in row])
    return out.getvalue()


def summary(session: Session, district: str | None = None) -> dict[str, Any]:
    """Counts an administrator checks after an import."""
    contacts = active_contacts(session, district)
    org_stmt = select(Organization).where(Organization.active)
    if district:
        org_stmt = org_stmt.where(Organization.district == district)
    orgs = list(session.scalars(org_stmt))
    path_kinds: Counter[str] = Counter()
    reach: Counter[str] = Counter()
    for c in contacts:
        kinds = frozenset(p.kind for p in c.paths)
        path_kinds.update(kinds)
        reach["+".join(sorted(kinds))] += 1
    return {
        "organizations": len(orgs),
        "contacts": len(contacts),
        "districts": len({o.district for o in orgs if o.district}),
        "by_kind": dict(sorted(Counter(o.kind for o in orgs).items())),
        "by_district": dict(sorted(Counter(o.district for o in orgs if o.district).items())),
        "by_language": dict(sorted(Counter(c.language for c in contacts).items())),
        "paths": dict(sorted(path_kinds.items())),
        "reach": dict(sorted(reach.items())),
    }
