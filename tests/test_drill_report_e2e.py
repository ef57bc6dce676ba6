"""A drill against the sample ward, every recipient's behaviour scripted: the drill report's
figures equal those computed here from the script and the simulator's record (SPEC 4.4).

Each mobile contact of the sample directory gets one of five scripts: reply "1" by SMS 0.5
simulated minutes after the SMS is delivered, tap the link and press 了解 at 6, reply "はい" at
11, reply "1" at 21 (after the drill's 20-minute deadline), or stay silent. The drill is SMS
only, so organizations with no mobile never answer. Time runs SPEED times faster than real
time; the report's minutes are simulated minutes.

Who answers, how, and by which deadline follows from the script alone. When each organization
answers is bracketed by the simulator's own record: no earlier than the script's delay after
the moment the simulator took its SMS, no later than the moment the relay answered the
simulator's reply or link request (the relay commits the acknowledgement before it answers).
Each time-bound figure must lie within that bracket; where no organization's bracket straddles
a boundary (the deadline, with the script's margins), the figure is asserted exactly.
"""

from __future__ import annotations

import csv
import statistics
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import phonenumbers
import pytest
from sqlalchemy import func, select

from relay.db import transaction
from relay.delivery.runtime import get_runtime
from relay.drills import service
from relay.models import Alert, ContactPath, DrillRun, Recipient
from relay.reports import tally
from simulator import Behaviour, Population
from tests.conftest import SAMPLE_CSV
from tests.harness import Stack, wait_until

pytestmark = pytest.mark.slow
SPEED = 40.0
DEADLINE_S = 1200.0  # the drill's ack_within, simulated
SENT, DELIVERED = 0.5, 1.0  # simulated seconds from accepted to sent, sent to delivered
# Script -> (simulated seconds after delivery, how the recipient answers); None = silent
SCRIPTS: dict[str, tuple[float, str] | None] = {
    "fast": (30.0, "sms_reply"),
    "link": (360.0, "link"),
    "later": (660.0, "sms_reply"),
    "late": (1260.0, "sms_reply"),
    "silent": None,
}


def _e164(number: str) -> str:
    parsed = phonenumbers.parse(number, "JP")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _script() -> tuple[list[dict[str, str]], dict[str, str], dict[str, Behaviour]]:
    """The directory's rows, each mobile's script, and its simulator behaviour."""
    rows = list(csv.DictReader(SAMPLE_CSV.read_text(encoding="utf-8-sig").splitlines()))
    mobiles = sorted((r for r in rows if r["mobile"]), key=lambda r: (r["org_code"], r["priority"]))
    scripts: dict[str, str] = {}
    behaviours: dict[str, Behaviour] = {}
    for index, row in enumerate(mobiles):
        number = _e164(row["mobile"])
        name = list(SCRIPTS)[index % len(SCRIPTS)]
        scripts[number] = name
        b = Behaviour(sms_sent_delay=SENT, sms_delivery_delay=DELIVERED)
        script = SCRIPTS[name]
        if script is not None and script[1] == "link":
            b.link_answer, b.link_delay = "1", script[0]
        elif script is not None:
            b.sms_reply, b.sms_reply_delay = ("はい" if name == "later" else "1"), script[0]
        behaviours[number] = b
    return rows, scripts, behaviours


def _answer_times(
    rows: list[dict[str, str]],
    scripts: dict[str, str],
    log: list,
    start: float,
) -> tuple[dict[str, float], dict[str, float]]:
    """Per organization, the earliest and latest simulated seconds from the alert at which its
    first answer can have been recorded, from the simulator's log."""
    accepted = {r.to: r.wall for r in log if r.kind == "sms"}
    answered: dict[str, float] = {}
    for r in log:
        number = r.from_ if r.kind == "inbound_sms" else r.to if r.kind == "link_post" else None
        if number and 200 <= r.status < 400:  # the relay took it (and committed first)
            answered[number] = min(r.wall, answered.get(number, r.wall))
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    for row in rows:
        if not row["mobile"]:
            continue
        number = _e164(row["mobile"])
        script = SCRIPTS[scripts[number]]
        if script is None:
            continue
        code = row["org_code"]
        early = (accepted[number] - start) * SPEED + SENT + DELIVERED + script[0]
        late = (answered[number] - start) * SPEED
        low[code] = min(early, low.get(code, early))
        high[code] = min(late, high.get(code, late))
    return low, high


def _silent(url: str, run_id: int, scripts: dict[str, str]) -> list[tuple[str, str, str]]:
    """For a failure message: contacts scripted to answer whose recipient did not."""
    with transaction(url) as session:
        run = session.get(DrillRun, run_id)
        rows = session.execute(
            select(Recipient.state, ContactPath.address)
            .join(ContactPath, ContactPath.contact_id == Recipient.contact_id)
            .where(
                Recipient.alert_id == (run.alert_id if run else None),
                Recipient.acknowledged_at.is_(None),
                ContactPath.kind == "mobile",
            )
        ).all()
    return [(s, a[-4:], scripts[a]) for s, a in rows if SCRIPTS[scripts[a]] is not None]


def _share(times: dict[str, float], total: int, limit_s: float) -> float:
    return round(sum(1 for t in times.values() if t <= limit_s) / total, 4)


def test_drill_report_equals_the_script(db_url: str, tmp_path: Path) -> None:
    rows, scripts, behaviours = _script()
    orgs = {r["org_code"]: r for r in rows}
    population = Population(speed=SPEED, default=Behaviour(sms_sent_delay=SENT))
    rates = {"sms_rate": 400, "voice_rate": 50, "email_rate": 100}
    with Stack(db_url, tmp_path, population, scheduler=True, **rates) as stack:
        stack.import_directory(SAMPLE_CSV)
        for number, behaviour in behaviours.items():
            stack.sim.set_behaviour(number, behaviour)
        url = stack.settings.database_url
        spec = service.ScheduleSpec(
            name="scripted",
            cron="0 10 1 1 *",  # yearly; this run is fired by hand
            template="drill",
            audience="all",
            channels=("sms",),
            mode="blast",
            ack_within=timedelta(seconds=DEADLINE_S / SPEED),
            time_scale=SPEED,
        )
        with transaction(url) as session:
            service.save_schedule(session, spec, actor="test")
            run_id = service.run_now(session, "scripted", actor="test").id
        import workers.tasks  # noqa: F401  (registers the outbox publisher)

        get_runtime().publish_outbox()  # the run's task, as the API does after commit
        answering = sum(1 for name in scripts.values() if SCRIPTS[name] is not None)

        def finished() -> bool:
            with transaction(url) as session:
                run = session.get(DrillRun, run_id)
                if run is None or run.alert_id is None or run.state != "done":
                    return False
                acked = session.scalar(
                    select(func.count())
                    .select_from(Recipient)
                    .where(
                        Recipient.alert_id == run.alert_id, Recipient.acknowledged_at.is_not(None)
                    )
                )
            return acked == answering

        try:
            wait_until(finished, 150, f"the drill did not close with {answering} answers", 0.5)
        except AssertionError as exc:
            silent = _silent(url, run_id, scripts)
            seen = [
                (r.kind, r.status, r.result, (r.response or "")[:120])
                for r in stack.sim.log
                if any((r.to or r.from_ or "").endswith(tail) for _, tail, _ in silent)
                and r.kind not in ("sms", "status_callback")
            ]
            raise AssertionError(f"{exc}; silent: {silent}; simulator saw: {seen}") from None
        with transaction(url) as session:
            report = tally.drill_report(session, run_id)
            run = session.get(DrillRun, run_id)
            alert = session.get(Alert, run.alert_id if run else None)
            assert alert is not None
            start = alert.sent_at.timestamp()
        log = list(stack.sim.log)
        assert stack.sim.violations == []

    low, high = _answer_times(rows, scripts, log, start)
    methods = Counter(SCRIPTS[n][1] for n in scripts.values() if SCRIPTS[n] is not None)  # type: ignore[index]
    assert report["alert"]["status"] == "Exercise" and report["run"]["state"] == "done"
    assert report["organizations"] == len(orgs)
    assert report["recipients_acknowledged"] == answering
    assert report["acknowledged_at_end"] == len(low)
    assert report["methods"] == dict(methods)
    assert sorted(o["code"] for o in report["never_answered"]) == sorted(set(orgs) - set(low))
    for mark, limit in (("5m", 300), ("15m", 900), ("30m", 1800), ("deadline", DEADLINE_S)):
        figure = report["rates"][mark]
        bracket = (_share(high, len(orgs), limit), _share(low, len(orgs), limit))
        assert bracket[0] <= figure <= bracket[1], (mark, figure, bracket)
    median = report["time_to_ack_s"]["median"]
    bracket = (statistics.median(low.values()), statistics.median(high.values()))
    assert bracket[0] - 1 <= median <= bracket[1] + 1, (median, bracket)
    # The deadline sits far from every scripted time: who answered in time is exact.
    straddling = [c for c in low if low[c] <= DEADLINE_S < high[c]]
    assert straddling == [], "an answer's bracket straddles the deadline; see the docstring"
    within = {code for code, t in low.items() if t <= DEADLINE_S}
    assert report["acknowledged"] == len(within)
    assert report["rates"]["deadline"] == round(len(within) / len(orgs), 4)
    districts: dict[str, set[str]] = defaultdict(set)
    for code, row in orgs.items():
        districts[row["district"] or "-"].add(code)
    by_district = {d["district"]: d["acknowledged"] for d in report["by_district"]}
    assert by_district == {d: len(codes & within) for d, codes in districts.items()}
