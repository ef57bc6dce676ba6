"""`relay db ...`"""

from __future__ import annotations

import typer

from relay import migrate
from relay.cli.common import console, settings

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision")) -> None:
    """Create or migrate the database to the latest schema (Alembic)."""
    url = settings().database_url
    migrate.upgrade(url, revision)
    console.print(f"database at {revision}")
