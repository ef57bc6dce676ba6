"""The schema comes from Alembic and matches the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from relay import migrate
from relay.db import engine_for
from relay.models import Base


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    engine = engine_for(db_url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    migrate.downgrade(db_url, "base")
    engine.dispose()
    assert set(inspect(engine).get_table_names()) & set(Base.metadata.tables) == set()
    migrate.upgrade(db_url)
    engine.dispose()
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())


def test_models_match_migrations(db_url: str) -> None:
    with engine_for(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
