"""The `relay` command line. One sub-application per area, each in its own module.

May import: foundation, messages, questions, accounts, directory, delivery, replies, alerts, drills,
cap, reports, web, channels, simulator, workers, jma.
Must not import: nothing else; no room imports the command line.
"""

from __future__ import annotations

import sys

import typer

from relay.cli import (
    alert_cmd,
    db_cmd,
    demo,
    directory_cmd,
    drill_cmd,
    jma_cmd,
    process_cmd,
    user_cmd,
)
from relay.config import ConfigError

app = typer.Typer(
    help="Kanazawa Ward emergency information relay / 金沢区 緊急情報伝達システム",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db_cmd.app, name="db")
app.add_typer(directory_cmd.app, name="directory")
app.add_typer(alert_cmd.app, name="alert")
app.add_typer(drill_cmd.app, name="drill")
app.add_typer(user_cmd.app, name="user")
app.add_typer(jma_cmd.app, name="jma")
app.command()(process_cmd.serve)
app.command()(process_cmd.worker)
app.command()(process_cmd.scheduler)
app.command()(demo.demo)
app.command(
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "help_option_names": [],
    }
)(process_cmd.simulator)


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        # One clear line naming the variable, never a traceback (SPEC 5.4).
        print(f"relay: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
