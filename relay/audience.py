"""Audience selectors: who an alert goes to.

Text form (CLI): terms joined by `+` are combined with AND; values after `:` are alternatives
(OR). `org:` codes are added to whatever the filters select.

    all
    kind:association,disaster_base
    district:西柴+kind:association
    tag:cliff-zone,flood-zone
    kind:hospital+org:base-01,base-02
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from relay.models import ORG_KINDS, Contact, Organization

_KEYS = {"kind": "kinds", "district": "districts", "tag": "tags", "org": "orgs"}


class AudienceError(ValueError):
    """The selector cannot be understood, or selects nobody."""


@dataclass(frozen=True)
class Audience:
    kinds: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    orgs: tuple[str, ...] = ()
    everyone: bool = False
    # Exactly these contacts (follow-ups to those an earlier alert reached); not in the text form.
    contact_ids: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "all": self.everyone,
            "kinds": list(self.kinds),
            "districts": list(self.districts),
            "tags": list(self.tags),
            "orgs": list(self.orgs),
            **({"contact_ids": list(self.contact_ids)} if self.contact_ids else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Audience:
        return cls(
            kinds=tuple(data.get("kinds", ())),
            districts=tuple(data.get("districts", ())),
            tags=tuple(data.get("tags", ())),
            orgs=tuple(data.get("orgs", ())),
            everyone=bool(data.get("all", False)),
            contact_ids=tuple(data.get("contact_ids", ())),
        )

    @property
    def has_filter(self) -> bool:
        return bool(self.kinds or self.districts or self.tags)


def parse_audience(text: str) -> Audience:
    text = text.strip()
    if text in {"all", "*"}:
        return Audience(everyone=True)
    values: dict[str, list[str]] = {}
    for term in filter(None, (t.strip() for t in text.split("+"))):
        key, sep, rest = term.partition(":")
        if not sep or key not in _KEYS:
            raise AudienceError(
                f"cannot read {term!r}: use all, kind:K, district:D, tag:T or org:CODE "
                "(join with +)"
            )
        items = [v.strip() for v in rest.split(",") if v.strip()]
        if not items:
            raise AudienceError(f"{key}: needs at least one value")
        values.setdefault(_KEYS[key], []).extend(items)
    if not values:
        raise AudienceError("empty audience; use all to reach everyone")
    bad = [k for k in values.get("kinds", []) if k not in ORG_KINDS]
    if bad:
        raise AudienceError(f"unknown kind {bad[0]!r}; one of {', '.join(ORG_KINDS)}")
    unique = {k: tuple(dict.fromkeys(v)) for k, v in values.items()}
    return Audience(
        kinds=unique.get("kinds", ()),
        districts=unique.get("districts", ()),
        tags=unique.get("tags", ()),
        orgs=unique.get("orgs", ()),
    )


# Literal id lists are sent in slices: PostgreSQL takes at most 65,535 parameters a query.
_IN_SLICE = 10_000


def _chosen_orgs(session: Session, audience: Audience) -> set[int] | None:
    """Ids of the selected active organizations; None for all of them. Kind and district are
    filtered by the database; tags (a JSON list) here, on just the columns needed."""
    if audience.everyone:
        return None
    chosen: set[int] = set()
    if audience.orgs:
        rows = session.execute(
            select(Organization.code, Organization.id).where(
                Organization.active, Organization.code.in_(audience.orgs)
            )
        )
        found = {code: org_id for code, org_id in rows}
        missing = [code for code in audience.orgs if code not in found]
        if missing:
            raise AudienceError(f"unknown or inactive organization code(s): {', '.join(missing)}")
        chosen.update(found.values())
    if audience.has_filter:
        stmt = select(Organization.id, Organization.tags).where(Organization.active)
        if audience.kinds:
            stmt = stmt.where(Organization.kind.in_(audience.kinds))
        if audience.districts:
            stmt = stmt.where(Organization.district.in_(audience.districts))
        wanted = set(audience.tags)
        chosen.update(
            org_id
            for org_id, tags in session.execute(stmt)
            if not wanted or wanted & set(tags or ())
        )
    return chosen


def resolve(session: Session, audience: Audience) -> list[Contact]:
    """Active contacts of the selected active organizations, by organization code then
    priority. Unknown org codes are an error: a typo must not silently drop someone."""
    load = (selectinload(Contact.paths), selectinload(Contact.organization))
    if audience.contact_ids:
        ids = list(audience.contact_ids)
        contacts = [
            contact
            for start in range(0, len(ids), _IN_SLICE)
            for contact in session.scalars(
                select(Contact).where(Contact.id.in_(ids[start : start + _IN_SLICE])).options(*load)
            )
        ]
        return sorted(contacts, key=lambda c: (c.organization.code, c.priority))
    chosen = _chosen_orgs(session, audience)
    if chosen is None:
        active = select(Organization.id).where(Organization.active)
        contacts = list(
            session.scalars(
                select(Contact)
                .where(Contact.active, Contact.organization_id.in_(active))
                .options(*load)
            )
        )
        if not contacts and not session.scalar(active.limit(1)):
            raise AudienceError("the audience selects no organization")
    else:
        if not chosen:
            raise AudienceError("the audience selects no organization")
        ids = sorted(chosen)
        contacts = [
            contact
            for start in range(0, len(ids), _IN_SLICE)
            for contact in session.scalars(
                select(Contact)
                .where(Contact.active, Contact.organization_id.in_(ids[start : start + _IN_SLICE]))
                .options(*load)
            )
        ]
    return sorted(contacts, key=lambda c: (c.organization.code, c.priority))
