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


def _selected(org: Organization, audience: Audience) -> bool:
    if org.code in audience.orgs:
        return True
    if audience.everyone:
        return True
    if not audience.has_filter:
        return False
    return (
        (not audience.kinds or org.kind in audience.kinds)
        and (not audience.districts or org.district in audience.districts)
        and (not audience.tags or bool(set(org.tags) & set(audience.tags)))
    )


def resolve(session: Session, audience: Audience) -> list[Contact]:
    """Active contacts of the selected active organizations, by organization code then
    priority. Unknown org codes are an error: a typo must not silently drop someone."""
    if audience.contact_ids:
        chosen_contacts = session.scalars(
            select(Contact)
            .where(Contact.id.in_(audience.contact_ids))
            .options(selectinload(Contact.paths), selectinload(Contact.organization))
        )
        return sorted(chosen_contacts, key=lambda c: (c.organization.code, c.priority))
    orgs = list(session.scalars(select(Organization).where(Organization.active)))
    known = {o.code for o in orgs}
    missing = [code for code in audience.orgs if code not in known]
    if missing:
        raise AudienceError(f"unknown or inactive organization code(s): {', '.join(missing)}")
    chosen = {o.id for o in orgs if _selected(o, audience)}
    if not chosen:
        raise AudienceError("the audience selects no organization")
    contacts = session.scalars(
        select(Contact)
        .where(Contact.active, Contact.organization_id.in_(chosen))
        .options(selectinload(Contact.paths), selectinload(Contact.organization))
    )
    return sorted(contacts, key=lambda c: (c.organization.code, c.priority))
