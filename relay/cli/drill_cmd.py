"""`relay drill ...`: schedules, runs and reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from relay.cli.alert_cmd import publish_after_commit
from relay.cli.common import console, fail, print_json, settings
from relay.db import session_factory
from relay.drills import service
from relay.durations import parse_duration
from relay.reports import formats, tally
from relay.timefmt import local

app = typer.Typer(help="Drills: schedules, runs, reports.", no_args_is_help=True)


@app.command()
def schedule(
    name: Annotated[str, typer.Argument(help="schedule name, e.g. quarterly")],
    cron: Annotated[str, typer.Option(help='crontab in Asia/Tokyo, e.g. "0 10 1-7 1,4,7,10 1"')],
    template: Annotated[str, typer.Option(help="message template")] = "drill",
    audience: Annotated[str, typer.Option(help="audience selector")] = "all",
    channels: Annotated[str, typer.Option(help="sms,voice,email")] = "sms,voice,email",
    mode: Annotated[str, typer.Option(help="cascade or blast")] = "cascade",
    ack_within: Annotated[str, typer.Option(help="acknowledgement deadline")] = "30m",
    disable: Annotated[bool, typer.Option("--disable", help="keep it, do not fire")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create or change a drill schedule; shows the next five fire times (JST)."""
    try:
        spec = service.ScheduleSpec(
            name=name,
            cron=cron,
            template=template,
            audience=audience,
            channels=tuple(c.strip() for c in channels.split(",") if c.strip()),
            mode=mode,
            ack_within=parse_duration(ack_within),
            enabled=not disable,
        )
        with session_factory(settings().database_url).begin() as session:
            _, upcoming = service.save_schedule(session, spec, actor="cli")
    except (service.DrillError, ValueError) as exc:
        fail(str(exc), 1)
    if as_json:
        print_json({"name": name, "next": [t.isoformat() for t in upcoming]})
        return
    console.print(f"drill [bold]{name}[/] saved ({'disabled' if disable else 'enabled'}); next:")
    for moment in upcoming:
        console.print(f"  {local(moment, '%Y-%m-%d (%a) %H:%M')} JST")


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Schedules with their next fire time and recent runs (missed ones included)."""
    with session_factory(settings().database_url)() as session:
        rows = service.schedules_overview(session)
    if as_json:
        print_json(rows)
        return
    table = Table("name", "cron", "enabled", "next (JST)", "recent runs", "missed")
    for r in rows:
        nxt = local(r["next_fire_at"], "%Y-%m-%d %H:%M") if r["next_fire_at"] else "—"
        recent = ", ".join(f"#{x['id']} {x['state']}" for x in r["runs"]) or "—"
        table.add_row(
            r["name"], r["cron"], "yes" if r["enabled"] else "no", nxt, recent, str(r["missed"])
        )
    console.print(table)


@app.command()
def run(
    name: Annotated[str, typer.Argument(help="schedule name")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Fire a drill now, through the same path as a scheduled firing."""
    try:
        with session_factory(settings().database_url).begin() as session:
            drill_run = service.run_now(session, name, actor="cli")
            run_id = drill_run.id
    except service.DrillError as exc:
        fail(str(exc), 1)
    publish_after_commit()
    if as_json:  # the keys of POST /api/v1/drills/{name}/run
        print_json({"run_id": run_id})
    else:
        console.print(f"drill run {run_id} started")


@app.command()
def report(
    run_id: Annotated[int, typer.Argument(metavar="RUN_ID")],
    fmt: Annotated[str, typer.Option("--format", help="json, csv or html")] = "json",
    out: Annotated[Path | None, typer.Option(help="write to this file")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="same as --format json")] = False,
) -> None:
    """The drill's report: rates at 5/15/30 minutes, per channel, district and kind."""
    fmt = "json" if as_json else fmt
    if fmt not in ("json", "csv", "html"):
        fail("--format must be json, csv or html", 2)
    with session_factory(settings().database_url)() as session:
        try:
            data = tally.drill_report(session, run_id)
        except tally.ReportError as exc:
            fail(str(exc), 1)
    if fmt == "json":
        import json

        text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    else:
        text = formats.to_csv(data) if fmt == "csv" else formats.to_html(data)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")
