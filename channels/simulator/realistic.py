"""A realistic, seeded population of recipients for the demo and simulations.

Shapes drawn from what ward drills report: most people answer within minutes, a long tail
answers after 20-30 minutes, some never do; elderly leaders on home landlines meet answering
machines more often; phones sometimes fail to deliver; some people type full-width digits or
free text instead of "1". The figures are assumptions for a demo, not measurements; issue 10
calibrates them against the ward's 2015 trial.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from channels.simulator.behaviour import Behaviour, Population

PathKind = Literal["mobile", "landline", "ip_phone", "email"]

# Median answer delay ~3 simulated minutes, lognormal: ~10% take longer than 12 minutes.
MEDIAN_S = 180.0
SIGMA = 1.1
REPLIES = [
    ("1", 40),
    ("１", 22),
    ("了解", 14),
    ("OK", 4),
    ("はい", 4),
    ("りょうかいです", 3),
    ("2", 3),
    ("３", 2),
    ("道路が冠水しています", 3),
    ("家族と避難します", 2),
    ("倒木で通れません", 3),
]


@dataclass(frozen=True)
class Recipient:
    address: str  # E.164 or email address
    kind: PathKind
    elderly: bool = False  # a leader reached at home: landline, answering machine


def _delay(rng: random.Random, median: float = MEDIAN_S) -> float:
    return round(min(rng.lognormvariate(math.log(median), SIGMA), 1800.0), 1)


def _weighted(rng: random.Random, table: list[tuple[str, int]]) -> str:
    return rng.choices([t for t, _ in table], weights=[w for _, w in table])[0]


def _mobile(rng: random.Random) -> Behaviour:
    b = Behaviour(
        sms_outcome="delivered" if rng.random() < 0.97 else "undelivered",
        sms_sent_delay=round(rng.uniform(0.5, 2), 1),
        sms_delivery_delay=round(rng.uniform(2, 8), 1),
    )
    roll = rng.random()
    if roll < 0.45:
        b.sms_reply, b.sms_reply_delay = _weighted(rng, REPLIES), _delay(rng)
    elif roll < 0.65:
        b.link_answer, b.link_delay = ("1" if rng.random() < 0.9 else "2"), _delay(rng)
    call = rng.random()
    b.call_outcome = (
        "human"
        if call < 0.65
        else "no-answer"
        if call < 0.88
        else "machine"
        if call < 0.95
        else "busy"
    )
    b.answer_delay = round(rng.uniform(5, 20), 1)
    keys = rng.random()
    b.digits = "1" if keys < 0.78 else "9 1" if keys < 0.86 else "4 1" if keys < 0.9 else None
    return b


def _landline(rng: random.Random, elderly: bool) -> Behaviour:
    b = Behaviour(line="landline", answer_delay=round(rng.uniform(8, 25), 1))
    call = rng.random()
    machine = 0.3 if elderly else 0.15
    b.call_outcome = "human" if call < 0.6 else "machine" if call < 0.6 + machine else "no-answer"
    keys = rng.random()
    b.digits = "1" if keys < 0.68 else "9 1" if keys < 0.78 else "5 1" if keys < 0.84 else None
    return b


def _email(rng: random.Random) -> Behaviour:
    b = Behaviour(email_outcome="accept" if rng.random() < 0.98 else "reject")
    if rng.random() < 0.4:
        b.email_link_answer, b.email_link_delay = "1", _delay(rng, median=420.0)
    return b


def realistic_population(recipients: Iterable[Recipient], seed: int, speed: float) -> Population:
    """Each address gets its own behaviour, drawn from `seed` in the order given."""
    rng = random.Random(seed)
    population = Population(seed=seed, speed=speed)
    for r in recipients:
        if r.kind == "email":
            population.set(r.address, _email(rng))
        elif r.kind == "mobile":
            population.set(r.address, _mobile(rng))
        else:
            population.set(r.address, _landline(rng, r.elderly))
    return population
