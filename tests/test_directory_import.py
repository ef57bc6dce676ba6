"""Directory import (SPEC 6): all rows valid or nothing written; idempotent; updates to match."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from relay.cli import app
from relay.db import transaction
from relay.models import AuditEvent, Contact, ContactPath, Organization
from tests.conftest import SAMPLE_CSV

HEADER = (
    "org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,priority,"
    "mobile,landline,email,language\n"
)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def counts(db_url: str) -> tuple[int, int, int, int]:
    with transaction(db_url) as s:
        return (
            s.scalar(select(func.count()).select_from(Organization)) or 0,
            s.scalar(select(func.count()).select_from(Contact)) or 0,
            s.scalar(select(func.count()).select_from(ContactPath)) or 0,
            s.scalar(select(func.count()).select_from(AuditEvent)) or 0,
        )


def test_sample_directory_imports_with_the_expected_counts(relay_env: dict[str, str]) -> None:
    code, out, err = run("directory", "import", str(SAMPLE_CSV), "--json")
    assert code == 0, err
    code, out, _ = run("directory", "show", "--json")
    summary = json.loads(out)
    assert summary["districts"] == 13
    assert summary["by_kind"] == {
        "association": 173,
        "care_plaza": 9,
        "disaster_base": 26,
        "facility": 20,
        "federation": 13,
        "hospital": 2,
        "shelter": 5,
        "ward_office": 1,
    }
    assert 550 <= summary["contacts"] <= 650
    assert set(summary["by_language"]) == {"ja", "en", "ja-easy"}
    assert {"mobile", "landline", "email", "email+landline+mobile"} <= set(summary["reach"])
    with transaction(relay_env["RELAY_DATABASE_URL"]) as s:
        # every number stored in E.164; SMS-capable paths are mobiles only
        for path in s.scalars(select(ContactPath)):
            if path.kind != "email":
                assert path.address.startswith("+81") and path.address[1:].isdigit()
            if path.kind == "mobile":
                assert path.line_type == "mobile"
        event = s.scalars(select(AuditEvent)).one()
        assert event.action == "directory.import" and event.actor == "cli"


def test_reimporting_the_same_file_changes_nothing(relay_env: dict[str, str]) -> None:
    url = relay_env["RELAY_DATABASE_URL"]
    assert run("directory", "import", str(SAMPLE_CSV))[0] == 0
    with transaction(url) as s:
        before = {(c.id, c.name, c.updated_at) for c in s.scalars(select(Contact))}
    code, out, _ = run("directory", "import", str(SAMPLE_CSV), "--json")
    assert code == 0
    result = json.loads(out)
    assert (result["added"], result["updated"], result["deactivated"]) == (0, 0, 0)
    with transaction(url) as s:
        after = {(c.id, c.name, c.updated_at) for c in s.scalars(select(Contact))}
    assert before == after


def test_changed_file_updates_adds_and_deactivates(relay_env: dict[str, str], tmp_path) -> None:
    url = relay_env["RELAY_DATABASE_URL"]
    first = tmp_path / "v1.csv"
    first.write_text(
        HEADER
        + "a1,西柴自治会,association,西柴,,,山田 一郎,会長,1,090-9999-0001,,,ja\n"
        + "a1,西柴自治会,association,西柴,,,山田 花子,副会長,2,090-9999-0002,,,ja\n"
        + "a2,並木自治会,association,並木,,,佐藤 茂,会長,1,,045-799-0001,,ja\n",
        encoding="utf-8",
    )
    second = tmp_path / "v2.csv"
    second.write_text(
        HEADER
        + "a1,西柴自治会,association,西柴,,cliff-zone,山田 一郎,会長,1,090-9999-0011,,,en\n"
        + "a3,六浦自治会,association,六浦,,,鈴木 誠,会長,1,,,x@example.jp,ja\n",
        encoding="utf-8",
    )
    assert run("directory", "import", str(first))[0] == 0
    code, out, err = run("directory", "import", str(second), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["deactivated"] == 3  # contact a1#2, organization a2 and its contact a2#1
    with transaction(url) as s:
        a1 = s.scalars(select(Organization).where(Organization.code == "a1")).one()
        assert a1.tags == ["cliff-zone"] and a1.active
        lead = s.scalars(
            select(Contact).where(Contact.organization_id == a1.id, Contact.priority == 1)
        ).one()
        assert lead.language == "en"
        assert [p.address for p in lead.paths] == ["+819099990011"]
        deputy = s.scalars(
            select(Contact).where(Contact.organization_id == a1.id, Contact.priority == 2)
        ).one()
        assert not deputy.active
        a2 = s.scalars(select(Organization).where(Organization.code == "a2")).one()
        assert not a2.active
        assert s.scalars(select(Organization).where(Organization.code == "a3")).one().active
    # the directory shown is what the second file says
    code, out, _ = run("directory", "show", "--json")
    assert json.loads(out)["contacts"] == 2


def test_bad_phone_on_line_40_is_named_and_nothing_is_written(relay_env, tmp_path) -> None:
    lines = SAMPLE_CSV.read_text(encoding="utf-8").splitlines(keepends=True)
    fields = lines[39].split(",")  # line 40 of the file
    fields[9] = "090-12"  # mobile column
    lines[39] = ",".join(fields)
    bad = tmp_path / "bad.csv"
    bad.write_text("".join(lines), encoding="utf-8")
    code, _, err = run("directory", "import", str(bad))
    assert code == 1
    assert "line 40, column mobile" in err
    assert "nothing was imported" in err
    assert counts(relay_env["RELAY_DATABASE_URL"]) == (0, 0, 0, 0)


BAD_ROWS = [
    ("a1,X,association,西柴,,,山田,会長,1,abc,,,ja", "mobile", "not a phone number"),
    ("a1,X,association,西柴,,,山田,会長,1,045-799-0001,,,ja", "mobile", "is a landline"),
    ("a1,X,association,西柴,,,山田,会長,1,050-9999-0001,,,ja", "mobile", "IP phone"),
    ("a1,X,association,西柴,,,山田,会長,1,,0120-123-456,,ja", "landline", "calls or SMS"),
    ("a1,X,association,西柴,,,山田,会長,1,,,not-an-email,ja", "email", "@"),
    ("a1,X,association,西柴,,,山田,会長,1,,,,ja", "mobile", "at least one of"),
    ("a1,X,temple,西柴,,,山田,会長,1,090-9999-0001,,,ja", "org_kind", "unknown kind"),
    ("a1,X,association,西柴,,,山田,会長,first,090-9999-0001,,,ja", "priority", "whole number"),
    ("a1,X,association,西柴,,,山田,会長,1,090-9999-0001,,,fr", "language", "unknown language"),
    (",X,association,西柴,,,山田,会長,1,090-9999-0001,,,ja", "org_code", "required"),
    ("a1,X,association,西柴,,,,会長,1,090-9999-0001,,,ja", "contact_name", "required"),
    (
        "a1,X,association,西柴,fed-x,,山田,会長,1,090-9999-0001,,,ja",
        "parent_code",
        "not in the file",
    ),
    ("a1,X,association,西柴,,,山田,会長,1,090-9999-0001,,,ja,extra", "-", "more fields"),
]


@pytest.mark.parametrize(("row", "column", "reason"), BAD_ROWS)
def test_each_kind_of_bad_row(relay_env, tmp_path, row: str, column: str, reason: str) -> None:
    good = "a0,Y,association,並木,,,佐藤,会長,1,090-9999-0009,,,ja\n"
    path = tmp_path / "d.csv"
    path.write_text(HEADER + good + row + "\n", encoding="utf-8")
    code, _, err = run("directory", "import", str(path))
    assert code == 1
    assert f"column {column}" in err and reason in err
    if column != "parent_code":
        assert "line 3" in err
    assert counts(relay_env["RELAY_DATABASE_URL"]) == (0, 0, 0, 0)


def test_duplicate_priority_and_conflicting_org_rows(relay_env, tmp_path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(
        HEADER
        + "a1,X,association,西柴,,,山田,会長,1,090-9999-0001,,,ja\n"
        + "a1,X,association,西柴,,,田中,副会長,1,090-9999-0002,,,ja\n"
        + "a1,Z,association,並木,,,鈴木,防災担当,3,090-9999-0003,,,ja\n",
        encoding="utf-8",
    )
    code, _, err = run("directory", "import", str(path))
    assert code == 1
    assert "line 3, column priority" in err and "(line 2)" in err
    assert "line 4, column org_code" in err


def test_missing_header_column_and_non_utf8(relay_env, tmp_path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("org_code,org_name\na1,X\n", encoding="utf-8")
    code, _, err = run("directory", "import", str(path))
    assert code == 1 and "column org_kind: missing column" in err
    path.write_bytes(HEADER.encode() + "a1,西柴,association".encode("shift_jis"))
    code, _, err = run("directory", "import", str(path))
    assert code == 1 and "not UTF-8" in err


def test_dry_run_validates_only_and_bom_is_accepted(relay_env, tmp_path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + SAMPLE_CSV.read_bytes())
    code, out, _ = run("directory", "import", str(path), "--dry-run", "--json")
    assert code == 0 and json.loads(out)["contacts"] > 500
    assert counts(relay_env["RELAY_DATABASE_URL"]) == (0, 0, 0, 0)


def test_export_then_import_changes_nothing(relay_env, tmp_path) -> None:
    assert run("directory", "import", str(SAMPLE_CSV))[0] == 0
    exported = tmp_path / "export.csv"
    assert run("directory", "export", str(exported))[0] == 0
    code, out, _ = run("directory", "import", str(exported), "--json")
    assert code == 0
    assert json.loads(out)["updated"] == 0 and json.loads(out)["added"] == 0


def test_show_filters_by_district(relay_env) -> None:
    assert run("directory", "import", str(SAMPLE_CSV))[0] == 0
    code, out, _ = run("directory", "show", "--district", "野島", "--json")
    data = json.loads(out)
    assert code == 0 and data["by_district"] == {"野島": data["organizations"]}


def test_real_console_script(relay_env: dict[str, str]) -> None:
    """The installed entry point, in its own process, as an administrator runs it."""
    env = {**relay_env, "PATH": "/usr/bin:/bin"}
    relay = [sys.executable, "-c", "from relay.cli import main; main()"]
    upgrade = subprocess.run([*relay, "db", "upgrade"], env=env, capture_output=True, text=True)
    assert upgrade.returncode == 0, upgrade.stderr
    bad = subprocess.run(
        [*relay, "directory", "import", "/nonexistent.csv"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1 and "cannot read" in bad.stderr and "Traceback" not in bad.stderr
    broken = subprocess.run(
        [*relay, "directory", "show"],
        env={**env, "RELAY_SMS_RATE": "x"},
        capture_output=True,
        text=True,
    )
    assert broken.returncode == 2 and "RELAY_SMS_RATE" in broken.stderr
