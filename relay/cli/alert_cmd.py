"""`relay alert ...`: issue alerts and watch them."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table
from sqlalchemy import select

from relay.alerts import drafts as draft_service
from relay.alerts import lifecycle
from relay.alerts.issuing import IssueError, IssueRequest, issue_alert
from relay.alerts.sms_length import sms_length_notes
from relay.alerts.status import alert_status
from relay.cli.common import console, err_console, fail, print_json, settings
from relay.db import session_factory
from relay.delivery.runtime import get_runtime
from relay.directory.audience import AudienceError, parse_audience
from relay.durations import parse_duration
from relay.models import Alert
from relay.questions.catalog import AnswerError
from relay.replies.answers import operator_answers
from relay.reports.answers import answer_tally, answers_csv
from relay.timefmt import local

app = typer.Typer(help="Alerts: issue, watch, list.", no_args_is_help=True)


def _vars(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--var expects KEY=VALUE, got {pair!r}", 2)
        out[key.strip()] = value.strip()
    return out


def publish_after_commit() -> None:
    """Queue what the transaction committed. If the broker is down the work is safe in the
    outbox and the sweeper publishes it when the broker is back."""
    import workers.tasks  # noqa: F401  (entry point: registers the outbox publisher)

    try:
        get_runtime().publish_outbox()
    except Exception as exc:
        err_console.print(f"[yellow]queue unavailable ({exc}); the sweeper will publish it[/]")


@app.command()
def issue(
    template: Annotated[str, typer.Option(help="earthquake, tsunami, evacuation, ...")],
    audience: Annotated[
        str, typer.Option(help="all | kind:K | district:D | tag:T | org:C, joined by +")
    ],
    var: Annotated[list[str] | None, typer.Option("--var", help="KEY=VALUE (repeat)")] = None,
    channels: Annotated[str, typer.Option(help="sms,voice,email")] = "sms,voice,email",
    mode: Annotated[str, typer.Option(help="blast or cascade")] = "cascade",
    ack_within: Annotated[str, typer.Option(help="acknowledgement deadline, e.g. 15m")] = "15m",
    exercise: Annotated[bool, typer.Option("--exercise", help="a drill: 【訓練】")] = False,
    test: Annotated[bool, typer.Option("--test", help="a test: 【テスト】")] = False,
    questions: Annotated[
        str, typer.Option(help="questionnaires asked, e.g. damage-report,base-status")
    ] = "",
    remind_after: Annotated[
        str, typer.Option(help="remind who acknowledged without the required answers after")
    ] = "10m",
    reminders: Annotated[int, typer.Option(help="how many reminders: 0, 1 or 2")] = 1,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Issue an alert; prints its id and reference code."""
    if exercise and test:
        fail("--exercise and --test are exclusive", 2)
    try:
        deadline = parse_duration(ack_within)
        remind = parse_duration(remind_after)
        selector = parse_audience(audience)
    except (ValueError, AudienceError) as exc:
        fail(str(exc), 2)
    request = IssueRequest(
        template=template,
        audience=selector,
        variables=_vars(var or []),
        channels=tuple(c.strip() for c in channels.split(",") if c.strip()),
        mode=mode,
        ack_within=deadline,
        status="Exercise" if exercise else "Test" if test else "Actual",
        questions=tuple(q.strip() for q in questions.split(",") if q.strip()),
        remind_after=remind,
        reminders=reminders,
    )
    cfg = settings()
    try:
        with session_factory(cfg.database_url).begin() as session:
            alert = issue_alert(session, cfg, request)
            alert_id, reference = alert.id, alert.reference
            status = alert_status(session, alert)
            notes = sms_length_notes(cfg, alert.template, alert.variables, alert.status)
    except IssueError as exc:
        fail(str(exc), 1)
    publish_after_commit()
    if as_json:
        print_json(
            {
                "id": alert_id,
                "reference": reference,
                "state": status["state"],
                "recipients": status["recipients"],
                "sms_notes": [n.as_dict() for n in notes] if "sms" in request.channels else [],
            }
        )
    else:
        console.print(
            f"alert {alert_id} issued — reference [bold]{reference}[/], "
            f"{status['recipients']} recipients"
        )
        for note in notes if "sms" in request.channels else []:
            err_console.print(f"[yellow]note: {note.en()}[/]")


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.1f} min"


def _status_table(data: dict[str, Any]) -> Table:
    table = Table(title=f"alert {data['id']} {data['reference']} — {data['state']}")
    table.add_column("channel")
    for key in ("planned", "sent", "delivered", "reached", "failed"):
        table.add_column(key, justify="right")
    for channel in ("sms", "voice", "email", "overall"):
        row = data[channel]
        table.add_row(
            channel, *(str(row[k]) for k in ("planned", "sent", "delivered", "reached", "failed"))
        )
    table.caption = (
        f"recipients {data['recipients']} · acknowledged {data['acknowledged']} · "
        f"median time to acknowledge {_minutes(data['median_time_to_ack_s'])} · "
        f"silent organizations {len(data['silent_orgs'])}"
    )
    return table


def _load_status(alert_id: int) -> dict[str, Any]:
    with session_factory(settings().database_url)() as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            fail(f"no alert {alert_id}", 1)
        return alert_status(session, alert)


@app.command()
def status(
    alert_id: Annotated[int, typer.Argument(metavar="ID")],
    watch: Annotated[bool, typer.Option("--watch", help="refresh until Ctrl-C")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Progress per channel and overall, and the organizations not yet acknowledged."""
    data = _load_status(alert_id)
    if as_json:
        print_json(data)
        return
    if not watch:
        console.print(_status_table(data))
        return
    with Live(_status_table(data), console=console, refresh_per_second=2) as live:
        try:
            while True:
                time.sleep(1)  # a display refresh, not synchronisation
                live.update(_status_table(_load_status(alert_id)))
        except KeyboardInterrupt:
            pass


@app.command("list")
def list_(
    limit: Annotated[int, typer.Option(help="newest first")] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recent alerts."""
    with session_factory(settings().database_url)() as session:
        alerts = session.scalars(select(Alert).order_by(Alert.id.desc()).limit(limit)).all()
        rows = [
            {
                "id": a.id,
                "reference": a.reference,
                "status": a.status,
                "template": a.template,
                "state": a.state,
                "sent_at": local(a.sent_at),
            }
            for a in alerts
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "reference", "status", "template", "state", "sent (JST)")
    for r in rows:
        table.add_row(
            *(str(r[k]) for k in ("id", "reference", "status", "template", "state", "sent_at"))
        )
    console.print(table)


@app.command("update")
def update_(
    alert_id: Annotated[int, typer.Argument(metavar="ID")],
    template: Annotated[str, typer.Option(help="template of the follow-up message")],
    var: Annotated[list[str] | None, typer.Option("--var", help="KEY=VALUE (repeat)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Send a follow-up (CAP Update) to everyone the alert has reached; the old one closes."""
    cfg = settings()
    try:
        with session_factory(cfg.database_url).begin() as session:
            alert = lifecycle.update_alert(
                session, cfg, alert_id, template, _vars(var or []), "cli"
            )
            new_id, reference = alert.id, alert.reference
    except lifecycle.LifecycleError as exc:
        fail(str(exc), 1)
    publish_after_commit()
    if as_json:
        print_json({"id": new_id, "reference": reference, "updates": alert_id})
    else:
        console.print(f"alert {new_id} ({reference}) updates alert {alert_id}")


@app.command()
def cancel(
    alert_id: Annotated[int, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Stop every pending send and escalation now; tell those already reached."""
    cfg = settings()
    try:
        with session_factory(cfg.database_url).begin() as session:
            notice = lifecycle.cancel_alert(session, cfg, alert_id, "cli")
            notice_id = notice.id if notice else None
    except lifecycle.LifecycleError as exc:
        fail(str(exc), 1)
    publish_after_commit()
    if as_json:  # the keys of POST /api/v1/alerts/{id}/cancel
        print_json({"id": alert_id, "state": "cancelled", "notice": notice_id})
        return
    console.print(
        f"alert {alert_id} cancelled"
        + (f"; cancel notice is alert {notice_id}" if notice_id else "")
    )


@app.command()
def ack(
    alert_id: Annotated[int, typer.Argument(metavar="ID")],
    org: Annotated[str, typer.Option(help="organization code")],
    note: Annotated[str, typer.Option(help="who confirmed, how (required)")],
    contact: Annotated[str | None, typer.Option(help="contact name, if not the first")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Mark an organization acknowledged by hand (e.g. after a phone call); audited."""
    try:
        with session_factory(settings().database_url).begin() as session:
            result = lifecycle.manual_ack(session, alert_id, org, "cli", note, contact)
    except lifecycle.LifecycleError as exc:
        fail(str(exc), 1)
    row = result[0]
    if as_json:  # the keys of POST /api/v1/alerts/{id}/recipients/{rid}/ack
        print_json(row)
        return
    state = "acknowledged" if row["recorded"] else "was already acknowledged"
    console.print(f"{org} / {row['contact']}: {state}")


@app.command()
def answer(
    alert_id: Annotated[int, typer.Argument(metavar="ID")],
    org: Annotated[str, typer.Option(help="organization code")],
    answers: Annotated[
        list[str], typer.Argument(metavar="QUESTION=VALUE...", help="e.g. injured=1 sheltering=45")
    ],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Enter an organization's answers heard by phone (acknowledges it); audited."""
    values = _vars(answers)
    try:
        with session_factory(settings().database_url).begin() as session:
            alert = session.get(Alert, alert_id)
            if alert is None:
                fail(f"no alert {alert_id}", 1)
            recorded = operator_answers(session, alert, org, values, "cli", datetime.now(UTC))
    except AnswerError as exc:
        fail(str(exc), 1)
    result = {"org": org, "answers": recorded.values, "acknowledged": recorded.acknowledged}
    if as_json:  # the keys of POST /api/v1/alerts/{id}/answers
        print_json(result)
        return
    console.print(f"{org}: {len(recorded.values)} answer(s) recorded")


@app.command()
def answers(
    alert_id: Annotated[int, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="one row per organization")] = False,
) -> None:
    """The alert's answers: per question the tally, critical answers first, who has not
    reported."""
    with session_factory(settings().database_url)() as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            fail(f"no alert {alert_id}", 1)
        if as_csv:
            typer.echo(answers_csv(session, alert), nl=False)
            return
        data = answer_tally(session, alert)
    if as_json:  # the keys of GET /api/v1/alerts/{id}/answers
        print_json(data)
        return
    console.print(
        f"alert {alert_id}: {data['organizations_answered_required']}/"
        f"{data['organizations_asked']} organizations answered the required questions"
    )
    for row in data["critical"]:
        console.print(f"[red]! {row['org']} {row['name']}: {row['answer']}[/]")
    table = Table("question", "answered", "tally")
    for q in data["questions"]:
        if "options" in q:
            labels = q["option_labels"]
            tally = ", ".join(f"{labels[n]} {c}" for n, c in q["options"].items())
        elif "sum" in q:
            tally = f"計 {q['sum']}"
        else:
            tally = " / ".join(t["text"] for t in q.get("texts", []))[:200]
        table.add_row(q["label"], f"{q['answered']}/{q['asked']}", tally)
    console.print(table)
    for row in data["acknowledged_without_required_answers"]:
        console.print(f"未報告 {row['org']} {row['name']}: {', '.join(row['questions'])}")


@app.command()
def drafts(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Prepared alerts waiting for an operator (from JMA bulletins): issue or discard them."""
    cfg = settings()
    with session_factory(cfg.database_url)() as session:
        rows = [
            {
                "id": d.id,
                "created_at": local(d.created_at, "%Y-%m-%dT%H:%M:%S+09:00"),
                "rule": d.rule,
                "status": d.status,
                "template": d.template,
                "variables": d.variables,
                "audience": d.audience,
                "channels": d.channels,
                "summary": d.summary,
                "bulletin_id": d.bulletin_id,
            }
            for d in draft_service.open_drafts(session)
        ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no open drafts")
        return
    for row in rows:
        exercise = " 【訓練】" if row["status"] != "Actual" else ""
        console.print(
            f"[bold]draft {row['id']}[/]{exercise} {row['created_at']} {row['rule']}: "
            f"{row['template']} to {row['audience']}\n  {row['summary']}",
            highlight=False,
        )
    console.print("issue one with: relay alert issue-draft ID (or discard-draft ID)")


@app.command("issue-draft")
def issue_draft(
    draft_id: Annotated[int, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Issue a prepared alert as it stands."""
    cfg = settings()
    try:
        with session_factory(cfg.database_url).begin() as session:
            alert = draft_service.issue_draft(session, cfg, draft_id, "cli")
            out = alert_status(session, alert)
    except draft_service.DraftError as exc:
        fail(str(exc), 1)
    publish_after_commit()
    if as_json:
        print_json({k: out[k] for k in ("id", "reference", "state", "recipients")})
        return
    console.print(
        f"draft {draft_id} issued as alert {out['id']} — reference [bold]{out['reference']}[/], "
        f"{out['recipients']} recipients"
    )


@app.command("discard-draft")
def discard_draft(draft_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Discard a prepared alert; nothing is sent."""
    cfg = settings()
    try:
        with session_factory(cfg.database_url).begin() as session:
            draft_service.discard_draft(session, draft_id, "cli")
    except draft_service.DraftError as exc:
        fail(str(exc), 1)
    console.print(f"draft {draft_id} discarded")
