"""`relay user ...`: API users and their tokens; console passwords."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from relay.accounts.passwords import PasswordError, check_policy, set_password
from relay.accounts.users import UserError, create_user
from relay.cli.common import console, fail, print_json, settings
from relay.db import session_factory

app = typer.Typer(help="API users (bearer tokens) and console passwords.", no_args_is_help=True)


def _read_password(from_stdin: bool) -> str:
    """From stdin (first line) when asked or when stdin is not a terminal; else a hidden
    prompt, typed twice. Never an argument: arguments show up in `ps` and shell history."""
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="user name")],
    role: Annotated[str, typer.Option(help="viewer, operator, coordinator or admin")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="also set a console password read from stdin")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a user and print its token once (only a hash is stored)."""
    password = _read_password(True) if password_stdin else None
    try:
        if password is not None:
            check_policy(password)  # before anything is written
        with session_factory(settings().database_url).begin() as session:
            _, token = create_user(session, name, role, actor="cli")
            if password is not None:
                set_password(session, name, password, actor="cli")
    except (UserError, PasswordError) as exc:
        fail(str(exc), 1)
    if as_json:  # the keys of POST /api/v1/users
        print_json({"name": name, "role": role, "token": token})
        return
    console.print(f"user {name} ({role}) created. Token (shown once, keep it safe):")
    typer.echo(token)
    if password is not None:
        console.print("console password set: sign in at /console/login")


@app.command()
def password(
    name: Annotated[str, typer.Argument(help="user name")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from stdin")
    ] = False,
) -> None:
    """Set or replace a user's console password (prompted, or read from stdin)."""
    secret = _read_password(password_stdin)
    try:
        with session_factory(settings().database_url).begin() as session:
            set_password(session, name, secret, actor="cli")
    except PasswordError as exc:
        fail(str(exc), 1)
    console.print(f"console password of {name} set")
