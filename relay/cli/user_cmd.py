"""`relay user ...`: API users and their tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from relay.cli.common import console, fail, settings
from relay.db import session_factory
from relay.users import UserError, create_user

app = typer.Typer(help="API users (bearer tokens).", no_args_is_help=True)


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="user name")],
    role: Annotated[str, typer.Option(help="viewer, operator, coordinator or admin")],
) -> None:
    """Create a user and print its token once (only a hash is stored)."""
    try:
        with session_factory(settings().database_url).begin() as session:
            _, token = create_user(session, name, role, actor="cli")
    except UserError as exc:
        fail(str(exc), 1)
    console.print(f"user {name} ({role}) created. Token (shown once, keep it safe):")
    typer.echo(token)
