"""`relay demo --compare`: the ward's 2015 design against the relay's cascade (issue 10).

Runs inside the demo's components (HTTP app, worker, scheduler, carrier simulator): first one
voice round to every organization's primary contact, then the default cascade, each on the
same seeded population with its clock started as the alert goes out. Prints the figures side
by side, writes reach-comparison.html and .json into the work folder, and exits 0 only if
each design's figures agree with the simulator's own record of what its people did.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.live import Live
from rich.table import Table
from sqlalchemy import select

from relay.alerts.issuing import issue_alert
from relay.alerts.lifecycle import stop_pending
from relay.cli.common import alert_settled, console
from relay.cli.progress import progress_table
from relay.db import session_factory, transaction
from relay.delivery.runtime import get_runtime
from relay.models import Alert, Delivery
from relay.reports import reach
from relay.timefmt import local
from simulator import SimulatorThread
from simulator.realistic import ReachPopulation


def _run_design(
    design: str,
    settings: Any,
    url: str,
    speed: float,
    sim_thread: SimulatorThread,
    population: ReachPopulation,
    owner: dict[str, str],
    horizon_s: float,
    voice_after: float | None,
    next_contact_after: float | None,
    recall_after: float | None,
) -> tuple[reach.Figures, reach.Figures, dict[str, float | None]]:
    # The deadline (and its summary to the ward office) comes after both runs are over.
    ack_within = 2 * timedelta(seconds=horizon_s) + timedelta(minutes=10)
    with transaction(url) as session:
        request = (
            reach.request_2015(session, speed, ack_within)
            if design == reach.DESIGN_2015
            else reach.request_cascade(
                speed, ack_within, voice_after, next_contact_after, recall_after
            )
        )
    sim = sim_thread.sim
    sim_thread.run(sim.drop_pending())  # the previous run's people are done
    sim.reset()
    population.restart()  # the people's clock starts at this alert's first request
    with transaction(url) as session:
        alert_id = issue_alert(session, settings, request).id
    get_runtime().publish_outbox()
    console.print(f"\n[bold]{reach.LABELS[design]}[/]")
    issued = time.monotonic()
    with Live(console=console, refresh_per_second=4) as live:
        while True:
            origin = population.origin
            if origin is None and time.monotonic() - issued > 60:
                raise RuntimeError("no request reached the simulator within 60 s")
            elapsed = 0.0 if origin is None else (time.monotonic() - origin) * speed
            live.update(progress_table(url, alert_id, elapsed / 60))
            # Done at the horizon, or earlier once nobody can still answer: the relay has
            # nothing left to send and the simulated people nothing left to do.
            if origin is not None and (
                elapsed >= horizon_s or (not sim.pending and alert_settled(url, alert_id))
            ):
                break
            time.sleep(0.25)  # a display refresh; the end is decided by the checks above
    assert origin is not None and population.origin_wall is not None
    end_s = min(horizon_s, (time.monotonic() - origin) * speed)
    # The simulator's record as the run ends, before the alert is closed: a keypress the
    # relay takes after the close is not an acknowledgement, so the simulator must not count
    # it either (the record was read after the close, and a late one made the checks differ).
    logged = list(sim.log)
    start = datetime.fromtimestamp(population.origin_wall, UTC)
    with transaction(url) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        stop_pending(session, alert)
        alert.state, alert.closed_at = "closed", datetime.now(UTC)
    with session_factory(url)() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        db = reach.figures_from_db(session, alert, design, end_s, start)
        db.processing_s = round((start - alert.sent_at).total_seconds(), 2)
        reference = alert.reference
        # Other alerts' traffic (none expected) is told apart by provider ids.
        other_ids = {
            pid
            for pid in session.scalars(
                select(Delivery.provider_id).where(Delivery.alert_id != alert_id)
            )
            if pid
        }
    records = [r for r in logged if r.sid not in other_ids]
    record = reach.figures_from_record(
        records, owner, reference, design, db.organizations, origin, speed, end_s
    )
    return db, record, reach.policy_of(request)


def _side_by_side(comparison: reach.Comparison) -> Table:
    designs = [f.summary() for f in comparison.designs]
    table = Table(title="到達比較 reach: same population, same simulated clock")
    table.add_column("")
    for d in designs:
        table.add_column(reach.LABELS[d["design"]], justify="right")

    def row(name: str, values: list[str]) -> None:
        table.add_row(name, *values)

    for mark, name in (("5m", "5 min"), ("15m", "15 min"), ("30m", "30 min"), ("end", "end")):
        row(
            f"organizations acknowledged, {name}",
            [
                f"{d['acknowledged'][mark]}/{d['organizations']} ({d['rates'][mark]:.1%})"
                for d in designs
            ],
        )
    row("run ended at (simulated)", [f"{d['end_min']:g} min" for d in designs])
    row("relay's work before the first request", [f"{d['processing_s']:g} s real" for d in designs])
    for key, name in (("median_s", "median"), ("p90_s", "90th percentile")):
        row(
            f"time to acknowledge, {name}",
            [f"{d[key] / 60:.1f} min" if d[key] is not None else "—" for d in designs],
        )
    row(
        "SMS sent (segments)", [f"{d['sent'].get('sms', 0)} ({d['sms_segments']})" for d in designs]
    )
    row("calls placed", [str(d["sent"].get("voice", 0)) for d in designs])
    row("emails sent", [str(d["sent"].get("email", 0)) for d in designs])
    row(
        "SMS + calls per acknowledgement",
        [str(d["messages_and_calls_per_ack"] or "—") for d in designs],
    )
    row(
        "calls picked up (person or machine)",
        [
            f"{d['voice']['picked_up']}/{d['voice']['called']} ({d['voice']['picked_up_rate']:.0%})"
            if d["voice"]["called"]
            else "—"
            for d in designs
        ],
    )
    row(
        "calls answered (key or spoken はい)",
        [
            f"{d['voice']['answered']}/{d['voice']['called']} ({d['voice']['answered_rate']:.0%})"
            if d["voice"]["called"]
            else "—"
            for d in designs
        ],
    )
    return table


def run_comparison(
    settings: Any,
    url: str,
    speed: float,
    seed: int,
    sim_thread: SimulatorThread,
    population: ReachPopulation,
    owner: dict[str, str],
    workdir: Path,
    horizon_min: float,
    voice_after: float | None = None,
    next_contact_after: float | None = None,
    recall_after: float | None = None,
) -> int:
    horizon_s = horizon_min * 60
    figures: list[reach.Figures] = []
    problems: list[str] = []
    policy: dict[str, float | None] = {}
    started = datetime.now(UTC)
    # The cascade first: its step timers run from issuing, so it must not follow another
    # run's leftovers in the worker (measured: a second alert's dispatch sometimes waited
    # ~20 s real behind the first's). The 2015 blast has no timers: a late start only moves
    # its clock's origin, which is its first call anyway. The cascade's people still due to
    # answer are dropped before the 2015 run, so none of them answers the wrong alert.
    for design in (reach.CASCADE, reach.DESIGN_2015):
        db, record, design_policy = _run_design(
            design,
            settings,
            url,
            speed,
            sim_thread,
            population,
            owner,
            horizon_s,
            voice_after,
            next_contact_after,
            recall_after,
        )
        if design == reach.CASCADE:
            policy = design_policy
        figures.append(db)
        # Each side times an acknowledgement when it saw it: allow half a real second.
        problems += [f"{design}: {p}" for p in reach.disagreements(db, record, 0.5 * speed)]
    figures.reverse()  # shown as 2015, then the cascade
    comparison = reach.Comparison(seed, speed, figures, started_at=local(started), policy=policy)
    console.print(_side_by_side(comparison))
    html = workdir / "reach-comparison.html"
    html.write_text(reach.to_html(comparison), encoding="utf-8")
    data = reach.figures_json(comparison)
    data["problems"] = problems
    (workdir / "reach-comparison.json").write_text(
        json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    console.print(f"HTML report: [bold]{html.resolve()}[/]")
    if problems:
        for problem in problems:
            console.print(f"[red]mismatch:[/] {problem}")
        return 1
    console.print("[green]the figures match the simulator's record[/]")
    return 0
