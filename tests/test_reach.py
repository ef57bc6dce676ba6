"""Reach (issue 10): the simulated ward's people, and the 2015 design against the cascade.

The model's own tests are pure and fast; the comparison runs as a user runs it, `relay demo
--compare`, through the real pipeline, and is checked against the simulator's own record.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay import migrate
from relay.cli.demo import SAMPLE, _people
from relay.db import transaction
from relay.directory.csv_format import parse_directory
from relay.directory.store import apply_directory
from relay.reports.reach import Figures, disagreements, figures_from_record
from simulator.behaviour import normalise_key
from simulator.log import LogRecord
from simulator.realistic import (
    Line,
    ReachPopulation,
    Recipient,
    behaviour_at,
    draw_person,
    realistic_population,
)
from tests.harness import run_relay

SEED = 2020
# The target is 95% within 15 simulated minutes. Measured with the defaults (2/4 min,
# spoken answers, a second call after 5 min; seed 2020, x20): 94.8-95.2% at 15 min, 96.8-97.2% at 30
# (91.6% / 94.4% before the last two). On a heavily loaded machine the pipeline falls behind
# the compressed clock and the 15-minute figure drops (by ~7 points seen: 85.1% against 92.0%
# at x30 with a load average of 7), so the test holds floors below what is achieved.
# ops/REACH.md says which behaviours hold the rest back.
CASCADE_15_MIN_FLOOR = 0.88
CASCADE_30_MIN_FLOOR = 0.95


@pytest.fixture(scope="module")
def ward(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Recipient], dict[str, str]]:
    """The sample directory's addresses as the demo hands them to the simulator."""
    url = f"sqlite:///{tmp_path_factory.mktemp('ward') / 'relay.db'}"
    migrate.upgrade(url)
    with transaction(url) as session:
        apply_directory(session, parse_directory(SAMPLE.read_bytes()), actor="test", source="t")
    return _people(url)


def _voice_numbers(people: list[Recipient]) -> list[Recipient]:
    """Each person's phone the relay would call: the mobile, else the landline."""
    phones: dict[str, Recipient] = {}
    for r in people:
        if r.kind in ("mobile", "landline") and r.person is not None:
            known = phones.get(r.person)
            if known is None or (known.kind == "landline" and r.kind == "mobile"):
                phones[r.person] = r
    return list(phones.values())


def _snapshot(population: ReachPopulation, keys: list[str], at: float) -> list[dict[str, object]]:
    population.clock = lambda: at
    return [population.behaviour_for(k).to_dict() for k in keys]


def test_a_seed_gives_the_same_people_and_another_seed_other_people(
    ward: tuple[list[Recipient], dict[str, str]],
) -> None:
    people, _ = ward
    keys = [r.address for r in people]
    one = realistic_population(people, seed=SEED, speed=30)
    again = realistic_population(people, seed=SEED, speed=30)
    other = realistic_population(people, seed=SEED + 1, speed=30)
    for t in (0.0, 300.0, 1200.0):
        assert _snapshot(one, keys, t) == _snapshot(again, keys, t)
    assert _snapshot(one, keys, 0.0) != _snapshot(other, keys, 0.0)
    # A restart (the next alert) plays the same people again, call for call.
    one.restart()
    first = _snapshot(one, keys, 60.0)
    one.restart()
    assert _snapshot(one, keys, 60.0) == first


def test_one_person_behind_several_addresses_shares_one_absence(
    ward: tuple[list[Recipient], dict[str, str]],
) -> None:
    people, _ = ward
    population = realistic_population(people, seed=SEED, speed=30)
    by_person: dict[str | None, set[float]] = {}
    for r in people:
        line = population.lines[normalise_key(r.address)]
        by_person.setdefault(r.person, set()).add(line.person.away_until)
    assert len(by_person) > 300
    assert all(len(absences) == 1 for absences in by_person.values())


def test_away_people_miss_calls_and_answer_texts_once_back() -> None:
    import random

    rng = random.Random(1)
    person = next(
        p
        for p in (draw_person(rng, False, random.Random(2)) for _ in range(500))
        if p.away_until > 600 and p.sms_read_after is not None and p.sms_action == "reply"
    )
    line = Line("mobile", person, sms_delivered=True, machine=True)
    early = behaviour_at(line, now=0.0, chance=0.1)
    assert early.call_outcome == "machine"  # voicemail: the person is out
    assert early.sms_reply_delay >= person.away_until - 5  # read after coming back
    later = behaviour_at(line, now=person.away_until + 60, chance=0.1)
    assert later.call_outcome == "human"
    assert later.sms_reply_delay < early.sms_reply_delay


def test_only_keypad_failures_answer_by_voice_and_only_some_of_them() -> None:
    import random

    rng, speech_rng = random.Random(3), random.Random(4)
    people = [draw_person(rng, elderly, speech_rng) for elderly in (False, True) * 1500]
    failing = [p for p in people if p.keypad in (None, "5 5")]
    assert all(p.speech is None for p in people if p.keypad not in (None, "5 5"))
    speaking = [p for p in failing if p.speech is not None]
    assert 0.5 <= len(speaking) / len(failing) <= 0.7  # SPEAKS_WHEN_INVITED = 0.6
    line = Line("landline", speaking[0])
    assert behaviour_at(line, now=0.0, chance=0.1).speech == speaking[0].speech


def test_one_voice_round_reproduces_the_2015_trial(
    ward: tuple[list[Recipient], dict[str, str]],
) -> None:
    """The model alone: one call to each first contact over ~4 minutes (1 call a second, as
    in 2015: 143 leaders in about 3 minutes). >90% picked up, 52% answered, within 5 points."""
    people, owner = ward
    population = realistic_population(people, seed=SEED, speed=30)
    first_contacts = {}
    for r in _voice_numbers(people):
        first_contacts.setdefault(
            owner[r.address.lower()], r
        )  # the directory lists priority 1 first
    called = picked = answered = 0
    for second, r in enumerate(first_contacts.values()):
        population.clock = lambda s=float(second): s
        b = population.behaviour_for(r.address)
        called += 1
        picked += b.call_outcome in ("human", "machine")
        last_key = (b.digits or "").split()[-1:]
        # A person who stays on the line and ends on a valid key ("9 1", "5 1" included).
        answered += (
            b.call_outcome == "human"
            and b.hang_up_after is None
            and last_key in (["1"], ["2"], ["3"])
        )
    assert called > 200
    assert 0.85 <= picked / called <= 0.97
    assert abs(answered / called - 0.52) <= 0.05


def _figures(ack_s: dict[str, float], sms: int = 5) -> Figures:
    return Figures("cascade", 10, 1800.0, ack_s, {"sms": sms, "voice": 3}, 10, 3, 2, 1)


def test_the_relay_and_the_simulator_must_agree_on_every_count() -> None:
    db = _figures({"a": 100.0, "b": 950.0})
    assert disagreements(db, _figures({"a": 101.0, "b": 951.0}), tolerance_s=15) == []
    moved = _figures({"a": 100.0, "b": 850.0})
    assert disagreements(db, moved, tolerance_s=15) == [
        "acknowledged by 15 min: relay 1, simulator 2"
    ]
    problems = disagreements(db, _figures({"a": 100.0}, sms=4), tolerance_s=15)
    assert "sms: the relay counts 5 sent, the simulator accepted 4" in problems
    assert "organizations acknowledged: relay 2, simulator 1" in problems
    assert db.marks == {"5m": 1, "15m": 1, "30m": 2, "end": 2}
    assert db.messages_and_calls_per_ack == 4.0


def test_an_answer_still_under_way_at_a_mark_may_fall_on_either_side() -> None:
    # A busy machine: "b"'s reply left at 290 s (simulated) and the relay's answer came back at
    # 330 s; the relay recorded it at 320 s. Either side of the 5-minute mark is right.
    db = _figures({"a": 100.0, "b": 320.0})
    slow = _figures({"a": 99.0, "b": 290.0})
    slow.ack_until = {"a": 100.0, "b": 330.0}
    assert disagreements(db, slow, tolerance_s=10) == []
    # ...but a mark the round trip did not straddle must agree, however busy the machine.
    late = _figures({"a": 100.0, "b": 950.0})
    assert disagreements(late, slow, tolerance_s=10) == [
        "acknowledged by 15 min: relay 1, simulator 2"
    ]


def test_a_keypress_the_relay_never_answered_may_count_either_way() -> None:
    # Two people press 1; the relay answers one, and the other's request times out (a busy
    # machine). The simulator cannot know whether the relay took the second: it counts only
    # the first, and the two sides may differ by the unanswered one, no more.
    origin = 1000.0
    records = [
        LogRecord("gather", to="+81901", sid="CA1", params={"Digits": "1"}, status=200,
                  mono=origin + 10, sent_mono=origin + 9),
        LogRecord("gather", to="+81902", sid="CA2", params={"Digits": "1"}, status=0,
                  mono=origin + 25, sent_mono=origin + 10),
    ]  # fmt: skip
    owner = {"+81901": "a", "+81902": "b"}
    record = figures_from_record(records, owner, "R-1", "cascade", 2, origin, 1.0, 1800.0)
    assert (record.answered, record.unanswered, sorted(record.ack_s)) == (1, 1, ["a"])
    took_both = Figures("cascade", 2, 1800.0, {"a": 9.5, "b": 11.0}, answered=2)
    took_one = Figures("cascade", 2, 1800.0, {"a": 9.5}, answered=1)
    assert disagreements(took_both, record, tolerance_s=1) == []
    assert disagreements(took_one, record, tolerance_s=1) == []
    took_none = Figures("cascade", 2, 1800.0, {}, answered=0)
    assert disagreements(took_none, record, tolerance_s=1) == [
        "calls placed/picked up/answered: relay 0/0/0, simulator 0/0/1, "
        "and 1 the relay gave no answer to",
        "organizations acknowledged: relay 0, simulator 1",
        "acknowledged by 5 min: relay 0, simulator 1",
        "acknowledged by 15 min: relay 0, simulator 1",
        "acknowledged by 30 min: relay 0, simulator 1",
    ]


@pytest.mark.slow
def test_compare_runs_both_designs_and_the_cascade_reaches_more_sooner(tmp_path: Path) -> None:
    workdir = tmp_path / "compare"
    args = ["demo", "--compare", "--seed", str(SEED), "--workdir", str(workdir)]
    result = run_relay(args, tmp_path, timeout=280)
    out = result.stdout + result.stderr
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    assert "the figures match the simulator's record" in result.stdout
    assert "Traceback" not in out
    data = json.loads((workdir / "reach-comparison.json").read_text(encoding="utf-8"))
    assert data["problems"] == []
    old, new = data["designs"]["2015"], data["designs"]["cascade"]
    assert old["organizations"] == new["organizations"] == 249
    # The 2015 design, played on the simulated ward, gives the 2015 trial's figures.
    assert abs(old["voice"]["answered_rate"] - 0.52) <= 0.05
    assert old["voice"]["picked_up_rate"] >= 0.85
    assert old["sent"] == {"voice": old["voice"]["called"]}  # calls only, one each
    # The cascade: the 15-minute target, and ahead of the 2015 design from 15 minutes on.
    assert new["rates"]["15m"] >= CASCADE_15_MIN_FLOOR, new
    assert new["rates"]["30m"] >= CASCADE_30_MIN_FLOOR, new
    assert new["rates"]["15m"] - old["rates"]["15m"] >= 0.35
    for mark in ("15m", "30m", "end"):
        assert new["acknowledged"][mark] > old["acknowledged"][mark]
    html = (workdir / "reach-comparison.html").read_text(encoding="utf-8")
    assert "【訓練】到達比較" in html and html.count("<polyline") == 2
    assert 'id="comparison"' in html
