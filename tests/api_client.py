"""An in-process API client with one user per role, and row counts to prove "nothing written"
(shared by the CAP, bad-input and schemathesis tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from relay.accounts.users import create_user
from relay.config import Settings, load_settings
from relay.db import transaction
from relay.models import Base
from relay.web.app import create_app
from tests.conftest import SAMPLE_CSV

ROLES = ("viewer", "operator", "coordinator", "admin")


@dataclass
class ApiClient:
    client: TestClient
    app: FastAPI
    settings: Settings
    tokens: dict[str, str]

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@contextmanager
def api_client(db_url: str, directory: bool = True) -> Iterator[ApiClient]:
    settings = load_settings(
        {"RELAY_DATABASE_URL": db_url, "RELAY_SECRET_KEY": "api-test-secret-0123"}
    )
    tokens = {}
    with transaction(db_url) as session:
        for role in ROLES:
            _, tokens[role] = create_user(session, f"{role}-1", role, actor="test")
    app = create_app(settings)
    with TestClient(app) as client:
        api = ApiClient(client, app, settings, tokens)
        if directory:
            response = client.post(
                "/api/v1/directory/import",
                content=SAMPLE_CSV.read_bytes(),
                headers=api.auth("admin"),
            )
            assert response.status_code == 200, response.text
        yield api


def row_counts(db_url: str) -> dict[str, int]:
    """Rows per table: equal before and after a refused request means nothing was written."""
    with transaction(db_url) as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        }
