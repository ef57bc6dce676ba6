"""Shared bits of the command line: settings, output, exit codes."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from rich.console import Console

from relay.config import Settings, load_settings

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # error lines stay whole for grep


def settings() -> Settings:
    return load_settings()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}", highlight=False)
    raise SystemExit(code)


def alert_settled(database_url: str, alert_id: int) -> bool:
    """For the demo's and the comparison's waits: nothing left to send or escalate."""
    from relay.alerts.status import settled
    from relay.db import session_factory

    with session_factory(database_url)() as session:
        return settled(session, alert_id)
