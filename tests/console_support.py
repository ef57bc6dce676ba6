"""Shared by the console tests: a small directory, users with passwords, signing in."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from fastapi.testclient import TestClient

from relay.accounts.passwords import set_password
from relay.accounts.users import create_user
from relay.db import transaction
from relay.directory.csv_format import parse_directory
from relay.directory.store import apply_directory

PASSWORD = "kanazawa-console-1"
HEADER = (
    "org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,priority,"
    "mobile,landline,email,language"
).split(",")
# code, name, district, mobile, language — three associations in 西柴, two in 金沢
ORGS = [
    ("nishi-1", "西柴第一自治会", "西柴", "090-9999-1001", "ja"),
    ("nishi-2", "西柴第二自治会", "西柴", "090-9999-1002", "ja"),
    ("nishi-3", "西柴団地自治会", "西柴", "090-9999-1003", "en"),
    ("kana-1", "金沢町自治会", "金沢", "090-9999-2001", "ja"),
    ("kana-2", "金沢南自治会", "金沢", "090-9999-2002", "ja"),
]


def e164(number: str) -> str:
    return "+81" + number.replace("-", "")[1:]


def write_directory(path: Path) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for code, name, district, mobile, language in ORGS:
            contact = (f"{name}会長", "会長", 1, mobile, "", f"{code}@example.jp", language)
            writer.writerow([code, name, "association", district, "", "", *contact])
    return path


def load_directory(db_url: str, tmp_path: Path) -> None:
    data = write_directory(tmp_path / "directory.csv").read_bytes()
    with transaction(db_url) as session:
        apply_directory(session, parse_directory(data), actor="test")


def make_users(db_url: str, roles: tuple[str, ...] = ("viewer", "operator", "coordinator")) -> None:
    """One user per role, named after it (e.g. `operator`), all with PASSWORD."""
    with transaction(db_url) as session:
        for role in roles:
            create_user(session, role, role, actor="test")
            set_password(session, role, PASSWORD, actor="test")


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF_INPUT.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign in through the form; return the session's CSRF token for later POSTs."""
    form = client.get("/console/login")
    response = client.post(
        "/console/login",
        data={"name": name, "password": password, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/console").text)
