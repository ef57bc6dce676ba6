"""`relay directory ...`: import, export and show the contact directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from relay.cli.common import console, err_console, fail, print_json, settings
from relay.db import transaction
from relay.directory import store
from relay.directory.csv_format import DirectoryFileError, parse_directory

app = typer.Typer(
    help="The contact directory (organizations, contacts, channels).", no_args_is_help=True
)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Directory CSV (UTF-8, header per SPEC 6)")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Import a directory CSV: every row valid, or nothing is written (exit status 1)."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    try:
        parsed = parse_directory(data)
    except DirectoryFileError as exc:
        if as_json:
            print_json({"ok": False, "errors": [e.__dict__ for e in exc.errors]})
        else:
            for error in exc.errors:
                err_console.print(f"{file}: {error}", highlight=False)
            err_console.print(f"[red]{len(exc.errors)} error(s); nothing was imported[/red]")
        raise SystemExit(1) from None
    if dry_run:
        result = {
            "ok": True,
            "dry_run": True,
            "organizations": len(parsed.orgs),
            "contacts": len(parsed.contacts),
        }
        if as_json:
            print_json(result)
        else:
            console.print(
                f"{file}: valid — {len(parsed.orgs)} organizations, "
                f"{len(parsed.contacts)} contacts (dry run, nothing written)"
            )
        return
    with transaction(settings().database_url) as session:
        changes = store.apply_directory(session, parsed, actor="cli", source=str(file))
    if as_json:
        print_json({"ok": True, **changes.as_dict()})
    else:
        console.print(
            f"imported {file}: " + ", ".join(f"{v} {k}" for k, v in changes.as_dict().items())
        )


@app.command()
def export(
    file: Annotated[Path | None, typer.Argument(help="Output CSV (default: stdout)")] = None,
) -> None:
    """Export the active directory as CSV, in the import format."""
    with transaction(settings().database_url) as session:
        text = store.export_csv(session)
    if file is None:
        typer.echo(text, nl=False)
    else:
        file.write_text(text, encoding="utf-8")
        console.print(f"wrote {file}")


@app.command()
def show(
    district: Annotated[str | None, typer.Option(help="Only this district")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Summarise the directory: organizations by kind and district, contacts and channels."""
    with transaction(settings().database_url) as session:
        data = store.summary(session, district)
    if as_json:
        print_json(data)
        return
    console.print(
        f"organizations: {data['organizations']}   contacts: {data['contacts']}   "
        f"districts: {data['districts']}"
    )
    for title, key in (
        ("kind", "by_kind"),
        ("district", "by_district"),
        ("reachable by", "reach"),
        ("language", "by_language"),
    ):
        table = Table(title=title, show_header=False)
        for name, count in data[key].items():
            table.add_row(name, str(count))
        console.print(table)
