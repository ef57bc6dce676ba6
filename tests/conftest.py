"""Shared fixtures: a fresh database per test on SQLite and on PostgreSQL.

PostgreSQL: one database per test session (created here, dropped at the end), migrated once,
truncated between tests. SQLite: a new file per test. Tests that need the real server skip
with the reason when it is not reachable — CI starts it (.ci/run), so there they always run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from relay import migrate
from relay.db import engine_for
from relay.models import Base

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RELAY_SHARED_DIR", ROOT.parent / "shared"))
SAMPLE_CSV = ROOT / "ops" / "sample" / "kanazawa-directory.csv"
PG_ADMIN_URL = os.environ.get(
    "RELAY_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# The Celery broker of end-to-end tests, with a key prefix per test session so that two
# sessions on one machine (a developer's and CI's) never take or flush each other's tasks.
# Set before anything imports workers.app, which reads it once at import.
TEST_BROKER = os.environ.get("RELAY_TEST_BROKER_URL", "redis://127.0.0.1:6379/14")
TEST_BROKER_PREFIX = f"relay-test-{os.getpid()}-{uuid.uuid4().hex[:6]}:"
os.environ.setdefault("RELAY_BROKER_URL", TEST_BROKER)
# Assigned, not set by default: an xdist worker inherits the controlling process's variable,
# and the Celery app (imported once, by whichever test publishes first) must use this worker's
# prefix, the one its `relay worker` processes are given and flush_test_broker() clears.
os.environ["RELAY_BROKER_PREFIX"] = TEST_BROKER_PREFIX


def flush_test_broker() -> None:
    """Drop tasks a previous test left behind (e.g. a killed worker's unacknowledged ones);
    skip the test, saying why, when there is no Redis to run workers on."""
    import redis

    try:
        client = redis.Redis.from_url(TEST_BROKER, socket_connect_timeout=2)
        keys = list(client.scan_iter(match=TEST_BROKER_PREFIX + "*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {TEST_BROKER}: {type(exc).__name__}")


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}"
    return None


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    reason = _pg_reachable()
    if reason:
        pytest.skip(reason)
    name = f"relay_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    migrate.upgrade(url)
    yield url
    engine_for(url).dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine_for(url).begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: each test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'relay.db'}"
        migrate.upgrade(url)
        yield url
        engine_for(url).dispose()
    else:
        url = request.getfixturevalue("pg_url")
        _truncate(url)
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """A migrated, empty SQLite database alone: enough for a browser test (the HTTP tests
    beside it run on both databases)."""
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    migrate.upgrade(url)
    yield url
    engine_for(url).dispose()


@pytest.fixture
def relay_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for running `relay` as a subprocess against the test database."""
    env = {
        "RELAY_DATABASE_URL": db_url,
        "RELAY_WORKDIR": str(tmp_path / "work"),
        "RELAY_SECRET_KEY": "test-secret-key-0123456789",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Slow end-to-end tests first: under pytest-xdist (`make test` runs 4 workers) the longest
    # ones then start at once instead of forming a tail after the quick ones are done.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
