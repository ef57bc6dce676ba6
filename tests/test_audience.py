"""Audience selectors: parsing and resolution against the sample directory."""

from __future__ import annotations

import pytest

from relay.audience import Audience, AudienceError, parse_audience, resolve
from relay.db import transaction
from relay.directory import apply_directory
from relay.directory_csv import parse_directory
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
        hospitals = resolve(s, parse_audience("kind:hospital"))
        assert {c.organization.code for c in hospitals} == {"hospital-1", "hospital-2"}
        west = resolve(s, parse_audience("kind:association+district:西柴"))
        assert west and all(
            c.organization.kind == "association" and c.organization.district == "西柴" for c in west
        )
        cliffs = resolve(s, parse_audience("tag:cliff-zone"))
        assert cliffs and all("cliff-zone" in c.organization.tags for c in cliffs)
        mixed = resolve(s, parse_audience("kind:hospital+org:base-01"))
        assert {c.organization.code for c in mixed} == {"hospital-1", "hospital-2", "base-01"}
        with pytest.raises(AudienceError, match="unknown or inactive organization"):
            resolve(s, parse_audience("org:nope"))
        with pytest.raises(AudienceError, match="selects no organization"):
            resolve(s, parse_audience("district:どこにもない"))
