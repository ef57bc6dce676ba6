"""`relay demo`: the whole product on one machine with nothing installed (SPEC 5.5).

Starts the real components in this process — the HTTP app (uvicorn), a Celery worker (threads
pool; on the in-memory broker unless RELAY_BROKER_URL names Redis), the scheduler
(APScheduler) — and the carrier simulator on loopback, playing the sample directory's ~600
recipients. Runs one cascade exercise through SMS, voice and email on a compressed clock,
asking for a situation report (relay/cli/demo_answers.py), shows live progress, prints the
drill report and the report's tallies, and writes its HTML page. Exits 0 only if the report
agrees with the simulator's own record of what it received, what its people did and answered,
and which reminders they got.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table
from sqlalchemy import select, update

from relay import migrate
from relay.alerts.issuing import NEXT_CONTACT_AFTER, RECALL_AFTER, VOICE_AFTER
from relay.alerts.lifecycle import stop_pending
from relay.cli.common import alert_settled, console, fail
from relay.cli.compare import run_comparison
from relay.cli.demo_answers import (
    QUESTIONNAIRES,
    print_situation,
    reminded_orgs,
    sim_questions,
    simulator_answers,
    verify_situation,
)
from relay.cli.progress import progress_table
from relay.config import load_settings
from relay.db import session_factory, transaction
from relay.delivery.runtime import get_runtime, reset_runtime
from relay.directory.csv_format import parse_directory
from relay.directory.store import apply_directory
from relay.drills import service
from relay.models import (
    Alert,
    Contact,
    ContactPath,
    Delivery,
    DrillRun,
    Organization,
)
from relay.replies.parsing import parse_reply
from relay.replies.reminders import REMIND_AFTER
from relay.reports import formats, tally
from relay.reports.reach import answered_in_call
from simulator import CarrierSimulator, SimulatorThread
from simulator.realistic import Recipient as SimRecipient
from simulator.realistic import realistic_population

SAMPLE = Path(__file__).resolve().parents[2] / "ops" / "sample" / "kanazawa-directory.csv"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare_env(workdir: Path, speed: float, port: int, db_url: str | None) -> dict[str, str]:
    env = {
        "RELAY_WORKDIR": str(workdir),
        "RELAY_DATABASE_URL": db_url or f"sqlite:///{workdir / 'relay.db'}",
        "RELAY_BROKER_URL": os.environ.get("RELAY_BROKER_URL") or "memory://",
        "RELAY_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RELAY_SECRET_KEY": os.environ.get("RELAY_SECRET_KEY") or secrets.token_hex(16),
        "TWILIO_ACCOUNT_SID": "AC" + secrets.token_hex(16),
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
        "TWILIO_FROM_NUMBER": "+815000000000",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_STARTTLS": "false",
        # Twilio's default account limits (10 segments/s, 1 call/s, 14 emails/s) on the
        # simulated clock: compressing time compresses the providers' seconds too.
        "RELAY_SMS_RATE": os.environ.get("RELAY_SMS_RATE") or f"{10 * speed:g}",
        "RELAY_VOICE_RATE": os.environ.get("RELAY_VOICE_RATE") or f"{1 * speed:g}",
        "RELAY_EMAIL_RATE": os.environ.get("RELAY_EMAIL_RATE") or f"{14 * speed:g}",
    }
    env.pop("TWILIO_MESSAGING_SERVICE_SID", None)
    return env


def _people(
    url: str, questionnaires: tuple[str, ...] = ()
) -> tuple[list[SimRecipient], dict[str, str]]:
    """Every address in the directory with its kind (and the questions its organization is
    asked); and address -> organization code."""
    recipients: list[SimRecipient] = []
    owner: dict[str, str] = {}
    with transaction(url) as session:
        rows = session.execute(
            select(
                ContactPath.kind,
                ContactPath.address,
                ContactPath.line_type,
                Contact.id,
                Contact.role,
                Organization.code,
                Organization.kind,
            )
            .join(Contact, Contact.id == ContactPath.contact_id)
            .join(Organization, Organization.id == Contact.organization_id)
            .order_by(ContactPath.id)
        ).all()
    for kind, address, line_type, contact_id, role, org_code, org_kind in rows:
        sim_kind = "email" if kind == "email" else "mobile" if line_type == "mobile" else "landline"
        elderly = org_kind == "association" and role in ("会長", "副会長")
        # One person behind each contact's mobile, landline and mailbox (shared presence).
        person = f"contact-{contact_id}"
        asked = sim_questions(questionnaires, org_kind)
        recipients.append(
            SimRecipient(address, sim_kind, elderly, person, org_code, asked)  # type: ignore[arg-type]
        )
        owner[address.lower()] = org_code
    return recipients, owner


def _org_kinds(url: str) -> dict[str, str]:
    with transaction(url) as session:
        return dict(session.execute(select(Organization.code, Organization.kind)).tuples().all())


def _sample(text: str, contacts: int) -> str:
    """About `contacts` contacts of the directory as whole organizations, taken in turn from
    each kind (so a small demo still has disaster bases and facilities to ask), with their
    parent federations; rows in the file's order."""
    rows = list(csv.DictReader(io.StringIO(text)))
    rows_of: dict[str, list[int]] = {}
    parent: dict[str, str] = {}
    by_kind: dict[str, list[str]] = {}
    for i, row in enumerate(rows):
        code = row["org_code"]
        if code not in rows_of:
            by_kind.setdefault(row["org_kind"], []).append(code)
            parent[code] = row["parent_code"]
        rows_of.setdefault(code, []).append(i)
    chosen: set[str] = set()
    taken = 0
    queues = list(by_kind.values())
    while taken < contacts and any(queues):
        for queue in queues:
            code = queue.pop(0) if queue and taken < contacts else ""
            while code and code not in chosen:  # the organization, then its parents
                chosen.add(code)
                taken += len(rows_of[code])
                code = parent.get(code, "")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows[i] for i in sorted(i for c in chosen for i in rows_of[c]))
    return out.getvalue()


@contextmanager
def _components(settings: Any, port: int, concurrency: int) -> Iterator[None]:
    import uvicorn
    from apscheduler.schedulers.background import BackgroundScheduler
    from celery.contrib.testing.worker import start_worker

    from relay.web.app import create_app
    from workers import tasks  # noqa: F401  (registers the outbox publisher)
    from workers.app import app as celery_app
    from workers.scheduler import add_jobs

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    web = threading.Thread(target=server.run, daemon=True, name="relay-web")
    web.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    scheduler = add_jobs(BackgroundScheduler(timezone="Asia/Tokyo"), tick_seconds=0.5)
    scheduler.start()
    try:
        with start_worker(
            celery_app,
            pool="threads",
            concurrency=concurrency,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=30,
        ):
            yield
    finally:
        scheduler.shutdown(wait=False)
        server.should_exit = True
        web.join(10)


def _simulator_record(
    sim: CarrierSimulator, owner: dict[str, str], reference: str, other_ids: set[str]
) -> dict[str, Any]:
    """What the simulator saw and did for the drill alert, in the report's terms. Traffic of
    other alerts (the deadline summary to the ward office) is told apart by its provider ids,
    and SMS replies by the alert the relay's answer names."""
    log = sim.log
    accepted = {"sms": 0, "voice": 0, "email": 0}
    for record in log.of_kind("sms", "call", "email"):
        if record.sid in other_ids:
            continue
        if record.status in (201, 250) or record.result == "accepted":
            accepted["voice" if record.kind == "call" else record.kind] += 1
    acted: set[str] = set()
    for record in log.of_kind("inbound_sms"):
        reply = parse_reply(record.body or "")
        if (
            (reply.kind in ("ack", "answer") or record.answers)  # answering acknowledges
            and record.from_
            and reference in (record.response or "")
        ):
            acted.add(record.from_.lower())
    for record in log.of_kind("gather", "link_post"):
        if record.sid in other_ids or not record.to:
            continue
        if record.kind == "gather" and answered_in_call(record.params):  # key or はい
            acted.add(record.to.lower())
        if record.kind == "link_post" and record.status == 200:
            acted.add(record.to.lower())
    return {"accepted": accepted, "orgs": {owner[a] for a in acted if a in owner}}


def _quiet_logs() -> None:
    """The demo's screen is the progress table: library chatter goes below warnings, and
    shutdown noise (connections still open when the loops stop) is not shown."""
    import logging

    for name in ("celery", "kombu", "amqp", "apscheduler", "aiosmtpd", "mail.log", "uvicorn"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)


def demo(
    speed: Annotated[
        float | None,
        typer.Option(help="time compression: simulated seconds per second [60; 20 with --compare]"),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the simulated population")] = 2020,
    recipients: Annotated[
        int | None,
        typer.Option(help="use only about N contacts: whole organizations of every kind"),
    ] = None,
    workdir: Annotated[Path, typer.Option(help="folder for the database and the report")] = Path(
        "var/demo"
    ),
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="keep serving afterwards")
    ] = False,
    concurrency: Annotated[int, typer.Option(help="worker threads")] = 4,
    compare: Annotated[
        bool,
        typer.Option(
            "--compare",
            help="instead: the ward's 2015 design (one voice round) against the cascade",
        ),
    ] = False,
    horizon: Annotated[
        float, typer.Option(help="--compare: simulated minutes each design runs at most")
    ] = 30.0,
    voice_after: Annotated[
        float | None,
        typer.Option(help="--compare: try the cascade with this call delay (minutes)"),
    ] = None,
    next_contact_after: Annotated[
        float | None,
        typer.Option(help="--compare: try the cascade with this next-contact delay (minutes)"),
    ] = None,
    recall_after: Annotated[
        float | None,
        typer.Option(
            help="--compare: try the cascade with this second-call delay (minutes; 0: none)"
        ),
    ] = None,
) -> None:
    """Run a cascade exercise against a simulated ward and print its drill report."""
    if speed is None:
        # A comparison's figures depend on the pipeline keeping up with the compressed clock
        # (ops/REACH.md): it runs slower than the demo, at about two minutes of wall time.
        speed = 20.0 if compare else 60.0
    if speed <= 0:
        fail("--speed must be positive", 2)
    if horizon <= 0:
        fail("--horizon must be positive", 2)
    _quiet_logs()
    db_url = os.environ.get("RELAY_DATABASE_URL")
    if db_url is None and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    os.environ.update(_prepare_env(workdir, speed, port, db_url))
    reset_runtime()
    settings = load_settings()
    url = settings.database_url
    console.print(
        f"[bold]金沢区 緊急情報伝達システム — demo[/]  database {url.split('///')[-1]}, "
        f"clock ×{speed:g}, seed {seed}"
    )
    migrate.upgrade(url)
    csv_bytes = SAMPLE.read_bytes()
    if recipients:
        csv_bytes = _sample(csv_bytes.decode("utf-8-sig"), recipients).encode()
    with transaction(url) as session:
        changes = apply_directory(
            session, parse_directory(csv_bytes), actor="demo", source=str(SAMPLE)
        )
    # The exercise asks for a situation report; the comparison's runs ask nothing.
    people, owner = _people(url, () if compare else QUESTIONNAIRES)
    console.print(
        f"directory: {changes.as_dict()['added']} records loaded, {len(people)} addresses"
    )

    population = realistic_population(people, seed=seed, speed=speed)
    sim = CarrierSimulator(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        f"{settings.public_url}/webhooks/twilio/sms",
        population=population,
    )
    with SimulatorThread(sim) as sim_thread:
        os.environ["TWILIO_API_URL"] = sim_thread.api_url
        os.environ["SMTP_PORT"] = str(sim_thread.smtp_port)
        reset_runtime()
        settings = load_settings()
        with _components(settings, port, concurrency):
            if compare:
                exit_code = run_comparison(
                    settings,
                    url,
                    speed,
                    seed,
                    sim_thread,
                    population,
                    owner,
                    workdir,
                    horizon,
                    voice_after,
                    next_contact_after,
                    recall_after,
                )
            else:
                kinds = _org_kinds(url)
                exit_code = _run_exercise(settings, url, speed, sim, owner, kinds, workdir)
            if keep_running:
                console.print(f"serving on {settings.public_url} — Ctrl-C to stop")
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    pass
    raise typer.Exit(exit_code)


def _run_exercise(
    settings: Any,
    url: str,
    speed: float,
    sim: CarrierSimulator,
    owner: dict[str, str],
    kinds: dict[str, str],
    workdir: Path,
) -> int:
    minute = timedelta(minutes=1) / speed
    spec = service.ScheduleSpec(
        name="quarterly-demo",
        cron="0 10 1-7 1,4,7,10 1",
        template="drill",
        audience="all",
        channels=("sms", "voice", "email"),
        mode="cascade",
        ack_within=30 * minute,
        voice_after=VOICE_AFTER / speed,  # the cascade's defaults on the compressed clock
        next_contact_after=NEXT_CONTACT_AFTER / speed,
        recall_after=RECALL_AFTER / speed,
        time_scale=speed,
        # The situation report, reminded after the default 10 simulated minutes: within the
        # exercise's 30, so those who acknowledged in the first 20 without answering are
        # reminded, and some answer only then.
        questions=QUESTIONNAIRES,
        remind_after=REMIND_AFTER / speed,
        reminders=1,
    )
    with transaction(url) as session:
        service.save_schedule(session, spec, actor="demo")
        run_id = service.run_now(session, spec.name, actor="demo").id
    get_runtime().publish_outbox()
    alert_id = _wait_for_alert(url, run_id)
    started = time.monotonic()
    deadline = started + (30 * minute).total_seconds()
    with Live(console=console, refresh_per_second=4) as live:
        calm = 0
        while True:
            elapsed = time.monotonic() - started
            live.update(progress_table(url, alert_id, elapsed * speed / 60))
            idle = not sim.pending
            calm = (
                calm + 1
                if (time.monotonic() > deadline and idle and alert_settled(url, alert_id))
                else 0
            )
            if calm >= 3 or elapsed > 600:
                break
            time.sleep(0.5)  # a display refresh; completion is decided by the checks above
    with transaction(url) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        stop_pending(session, alert)
        alert.state, alert.closed_at = "closed", datetime.now(UTC)
        session.execute(
            update(DrillRun)
            .where(DrillRun.id == run_id)
            .values(state="done", finished_at=datetime.now(UTC))
        )
    with session_factory(url)() as session:
        report = tally.drill_report(session, run_id)
        other_ids = {
            pid
            for pid in session.scalars(
                select(Delivery.provider_id).where(Delivery.alert_id != alert_id)
            )
            if pid
        }
        relay_reminded = reminded_orgs(session, alert_id)
    html = workdir / f"drill-report-{run_id}.html"
    html.write_text(formats.to_html(report), encoding="utf-8")
    reference = report["alert"]["reference"]
    answered = simulator_answers(sim, owner, reference, other_ids)
    _print_summary(report)
    print_situation(report, len(relay_reminded), len(answered.after_reminder), REMIND_AFTER, speed)
    console.print(f"HTML report: [bold]{html.resolve()}[/]")
    code = _verify(report, _simulator_record(sim, owner, reference, other_ids))
    problems = verify_situation(report, QUESTIONNAIRES, answered, kinds, relay_reminded)
    for problem in problems:
        console.print(f"[red]mismatch:[/] {problem}")
    if problems:
        return 1
    console.print("[green]the situation report matches the simulator's record[/]")
    return code


def _wait_for_alert(url: str, run_id: int) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with session_factory(url)() as session:
            run = session.get(DrillRun, run_id)
            if run is not None and run.alert_id is not None:
                return run.alert_id
            if run is not None and run.state == "failed":
                fail(f"drill run {run_id} failed to start")
        time.sleep(0.1)
    fail("the worker did not start the drill within 60 s")


def _print_summary(report: dict[str, Any]) -> None:
    r = report["rates"]
    t = report["time_to_ack_s"]
    run, ref = report["run"]["id"], report["alert"]["reference"]
    console.print(f"\n[bold]訓練結果 drill report[/] run #{run} ({ref})")
    console.print(
        f"organizations acknowledged: {report['acknowledged_at_end']}/{report['organizations']}  "
        f"at 5 min {r['5m']:.0%} · 15 min {r['15m']:.0%} · 30 min {r['30m']:.0%} · "
        f"deadline {r['deadline']:.0%}"
    )
    if t["median"] is not None:
        console.print(
            f"time to acknowledge: median {t['median'] / 60:.1f} min, "
            f"90th percentile {t['p90'] / 60:.1f} min (simulated)"
        )
    table = Table("channel", "planned", "sent", "delivered", "reached", "acknowledged")
    for channel, c in report["channels"].items():
        table.add_row(
            channel,
            *(
                str(c.get(k, 0))
                for k in ("planned", "sent", "delivered", "reached", "acknowledged")
            ),
        )
    console.print(table)
    console.print(f"never answered: {len(report['never_answered'])} organizations")


def _verify(report: dict[str, Any], record: dict[str, Any]) -> int:
    problems = []
    for channel, count in record["accepted"].items():
        sent = report["channels"].get(channel, {}).get("sent", 0)
        if sent != count:
            problems.append(f"{channel}: report says {sent} sent, the simulator accepted {count}")
    if report["acknowledged_at_end"] != len(record["orgs"]):
        problems.append(
            f"report says {report['acknowledged_at_end']} organizations acknowledged; "
            f"the simulator's people answered for {len(record['orgs'])}"
        )
    if problems:
        for problem in problems:
            console.print(f"[red]mismatch:[/] {problem}")
        return 1
    console.print("[green]the report matches the simulator's record[/]")
    return 0
