"""Audience selectors: parsing and resolution against the sample directory."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from relay.db import transaction
from relay.directory.audience import Audience, AudienceError, parse_audience, resolve
from relay.directory.csv_format import parse_directory
from relay.directory.store import apply_directory
from relay.models import Contact, ContactPath, Organization
from tests.conftest import SAMPLE_CSV


def test_parse() -> None:
    assert parse_audience("all") == Audience(everyone=True)
    a = parse_audience("kind:association,disaster_base+district:西柴+org:hospital-1")
    assert a.kinds == ("association", "disaster_base")
    assert a.districts == ("西柴",) and a.orgs == ("hospital-1",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("kind:", "at least one"),
        ("kind:temple", "unknown kind"),
        ("colour:red", "cannot read"),
        ("association", "cannot read"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(AudienceError, match=message):
        parse_audience(text)


def test_resolve_on_sample(db_url: str) -> None:
    with transaction(db_url) as s:
        apply_directory(s, parse_directory(SAMPLE_CSV.read_bytes()), actor="test")
    with transaction(db_url) as s:
        everyone = resolve(s, parse_audience("all"))
        assert len(everyone) == 603
        orgs = {o.id: o for o in s.scalars(select(Organization))}
        hospitals = resolve(s, parse_audience("kind:hospital"))
        assert {c.org_code for c in hospitals} == {"hospital-1", "hospital-2"}
        west = resolve(s, parse_audience("kind:association+district:西柴"))
        assert west and all(
            orgs[c.organization_id].kind == "association"
            and orgs[c.organization_id].district == "西柴"
            for c in west
        )
        cliffs = resolve(s, parse_audience("tag:cliff-zone"))
        assert cliffs and all("cliff-zone" in orgs[c.organization_id].tags for c in cliffs)
        mixed = resolve(s, parse_audience("kind:hospital+org:base-01"))
        assert {c.org_code for c in mixed} == {"hospital-1", "hospital-2", "base-01"}
        with pytest.raises(AudienceError, match="unknown or inactive organization"):
            resolve(s, parse_audience("org:nope"))
        with pytest.raises(AudienceError, match="selects no organization"):
            resolve(s, parse_audience("district:どこにもない"))


def test_targets_carry_each_contacts_paths_in_code_then_priority_order(db_url: str) -> None:
    with transaction(db_url) as s:
        apply_directory(s, parse_directory(SAMPLE_CSV.read_bytes()), actor="test")
    with transaction(db_url) as s:
        everyone = resolve(s, parse_audience("all"))
        stored = {
            (cid, kind, address, line_type)
            for cid, kind, address, line_type in s.execute(
                select(
                    ContactPath.contact_id,
                    ContactPath.kind,
                    ContactPath.address,
                    ContactPath.line_type,
                )
                .join(Contact, Contact.id == ContactPath.contact_id)
                .where(Contact.active)
            )
        }
        carried = {
            (t.contact_id, kind, address, line_type)
            for t in everyone
            for kind, (address, line_type) in t.paths.items()
        }
        assert carried == stored
        keys = [(t.org_code, t.priority) for t in everyone]
        assert keys == sorted(keys)
        # Exactly the given contacts, whatever their number.
        some = [t.contact_id for t in everyone[::7]]
        chosen = resolve(s, Audience(contact_ids=tuple(some)))
        assert sorted(t.contact_id for t in chosen) == sorted(some)
