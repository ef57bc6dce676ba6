"""`relay jma ...`: JMA bulletins fed by hand, and the trigger rules checked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from relay.cli.alert_cmd import publish_after_commit
from relay.cli.common import console, err_console, fail, print_json, settings
from relay.config import ConfigError, Settings
from relay.db import session_factory
from relay.jma.bulletin import INTENSITY_JA
from relay.jma.ingest import ingest_document
from relay.jma.rules import RulesError, load_rules

app = typer.Typer(help="JMA bulletins (気象庁防災情報XML): ingest, rules.", no_args_is_help=True)

# A JMA document is well under this; a larger file is not one (the parser refuses it anyway).
_MAX_READ = 20 * 1024 * 1024


def check_rules(cfg: Settings) -> None:
    """The trigger rules, read whole before anything acts on them: a bad file is one line
    naming the file, the rule and the field (exit 2), never a bulletin given up."""
    try:
        load_rules(cfg.triggers_path)
    except RulesError as exc:
        raise ConfigError(f"RELAY_TRIGGERS: {exc}") from None


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(metavar="FILE.xml...", exists=True)],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Feed bulletins by hand, in the order given (drills, tests, a feed that is down).
    Each acts as if the feed had brought it; exit 1 if any was refused."""
    cfg = settings()
    check_rules(cfg)
    results = []
    for path in files:
        with path.open("rb") as fh:
            data = fh.read(_MAX_READ + 1)
        with session_factory(cfg.database_url).begin() as session:
            done = ingest_document(session, cfg, data, f"file:{path.name}")
        publish_after_commit()
        results.append({"file": str(path), **done.__dict__})
        if not as_json:
            line = f"{path.name}: {done.outcome}"
            (err_console if done.bulletin_id is None else console).print(line, highlight=False)
    if as_json:
        print_json(results)
    if any(r["bulletin_id"] is None for r in results):
        raise SystemExit(1)


@app.command()
def rules(
    file: Annotated[
        Path | None, typer.Argument(help="a rules file (default RELAY_TRIGGERS)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check a trigger rules file and show what it does."""
    path = file or settings().triggers_path
    try:
        loaded = load_rules(path)
    except RulesError as exc:
        fail(str(exc), 1)
    if as_json:
        print_json(
            [
                {
                    "name": r.name,
                    "kinds": r.kinds,
                    "area_codes": r.area_codes,
                    "min_intensity": r.min_intensity,
                    "warnings": r.warnings,
                    "template": r.template,
                    "audience": r.audience,
                    "action": r.action,
                    "exercise": r.exercise,
                }
                for r in loaded
            ]
        )
        return
    console.print(f"{len(loaded)} rules in {path or 'the default Kanazawa rules'}:")
    for r in loaded:
        threshold = (
            f"震度{INTENSITY_JA.get(r.min_intensity, r.min_intensity)}以上"
            if r.min_intensity
            else "/".join(r.warnings)
        )
        console.print(
            f"  {r.name}: {','.join(r.kinds)} {threshold} at {','.join(r.area_codes)} "
            f"→ {r.action} {r.template} to {r.audience}",
            highlight=False,
            soft_wrap=True,
        )
