"""A realistic, seeded population of recipients: the ward's leaders as people, not addresses.

The model is documented, with its sources and the reasons for each figure, in ops/REACH.md.
In short: every *person* (a contact, who may have a mobile, a landline and a mailbox) draws
once, from the seed, whether and how long they are away when the alert goes out, how they use
a phone keypad, whether and how fast they read SMS and email, and how they answer. Every
*address* draws what sits on the line (mobile voicemail, a home answering machine that screens
every call, a number the carrier cannot deliver to). Each request then gets a `Behaviour`
computed for that moment of the simulated clock: a call while the person is away meets the
machine or rings out; an SMS read after they come back is answered then.

Calibrated so that one voice round to every organization's primary contact reproduces the
ward's 2015 trial (>90% of calls picked up, by a person or a machine; 52% answered with the
right key). Per-call chance (the phone in another room) is drawn from the seed, the address
and the call's index, so it does not depend on the order requests arrive in.

Situation reports (issue 16): when a recipient's organization is asked questions
(`Recipient.questions`), its situation is drawn once per organization (every contact reports
the same damage), and each person draws how they answer — with the acknowledgement, only
after the reminder, or never — and how they write an SMS (`1 2 0 3`, full-width
`１　２　０　３`, or by name, `避難者 45`). A text or email carrying a link the person already
got is the reminder. These draws use their own random streams: a population without questions
is exactly what it was.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar

from simulator.behaviour import Behaviour, Population, normalise_key

PathKind = Literal["mobile", "landline", "ip_phone", "email"]
T = TypeVar("T")
MINUTE = 60.0

# --- the person ---------------------------------------------------------------------------
# Away when the alert goes out (out shopping, in the bath, asleep after a night shift, driving):
# SHORT_AWAY back within 1-15 minutes, LONG_AWAY for 20 minutes to hours (lognormal, median 60).
SHORT_AWAY = 0.15
LONG_AWAY = 0.10
# A present person picks up a ringing phone with this chance per call (else it is in another
# room): 0.75 present x 0.93 ~ 0.70 of calls answered by a person, as in 2015.
PICKUP_WHEN_PRESENT = 0.93
BUSY = 0.02  # the line is busy (a call in progress), per call

# Keypad: what a person does once the call's menu plays, as Gather entries ("9 1" = repeat the
# message, then acknowledge; "5 1" = a wrong key, the menu again, then the right one; "5 5" =
# wrong twice, then gives up; None = waits without pressing; "hangup" = puts the phone down
# while the recorded voice still speaks). Elderly leaders fail more often (2015: "keypad
# confusion").
KEYPAD: dict[bool, list[tuple[str | None, float]]] = {
    False: [("1", .70), ("9 1", .08), ("5 1", .05), ("5 5", .05), (None, .07), ("hangup", .05)],
    True: [("1", .58), ("9 1", .08), ("5 1", .05), ("5 5", .08), (None, .10), ("hangup", .11)],
}  # fmt: skip

# Spoken answers: of the people who fail the keypad (press nothing, or a wrong key twice),
# this share say an answer instead when the call invites them to (「1を押すか、『はい』と
# お答えください」) — an assumption (ops/REACH.md): 2015's failures were keypad confusion, not
# unwillingness, and such a person answers a question put to them. What they say; a few
# things the relay cannot take for an answer (it asks again, and they then do what they did).
SPEAKS_WHEN_INVITED = 0.6
KEYPAD_FAILURES = (None, "5 5")
SPOKEN = [("はい", 70.0), ("了解", 8.0), ("はい、わかりました", 10.0), ("もしもし？", 12.0)]

# SMS: does the person read texts at all (else the phone is only for calls), how long after it
# arrives (or after they are back) they look, and what they do then.
SMS_READER = {False: 0.92, True: 0.80}
SMS_READ_MEDIAN = 2 * MINUTE  # lognormal, SIGMA: ~10% look after more than ~8 minutes
SMS_ACTION: dict[bool, list[tuple[str, float]]] = {
    False: [("reply", 0.50), ("link", 0.35), ("none", 0.15)],
    True: [("reply", 0.50), ("link", 0.20), ("none", 0.30)],  # "I'll wait for the call"
}
ACT_MEDIAN = 40.0  # seconds to type the reply or tap the link once read
# What people type back. A few write a report instead of "1": kept by the relay as free text,
# not an acknowledgement.
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
LINK_ANSWERS = [("1", 90), ("2", 7), ("3", 3)]

# Situation reports: when a person answers the questions — with the acknowledgement ("now":
# the SMS reply carries the answers, the link's form is filled in, the keys follow the 1 in a
# call), only once reminded ("later": acknowledges first, the figures are not to hand yet), or
# never (acknowledges only) — and how they write the answers in an SMS: numbers in question
# order, the same typed on a Japanese keyboard (full-width digits, ideographic spaces), or a
# count by name (`避難者 45`: the rest only when reminded).
REPORT_STYLE: dict[bool, list[tuple[str, float]]] = {
    False: [("now", 0.55), ("later", 0.30), ("never", 0.15)],
    True: [("now", 0.45), ("later", 0.35), ("never", 0.20)],
}
SMS_WRITES = [("digits", 0.55), ("wide", 0.30), ("named", 0.15)]
OPTIONAL_ANSWERED = 0.6  # an optional question with something to say is answered
# The organization's situation: the first option of a choice is the usual one (なし, 開設済み);
# a critical option (負傷者あり, 倒壊あり, 火災 はい) is rare; a count is lognormal.
CRITICAL_ANSWER = 0.03
USUAL_ANSWER = 0.8
YES_WITHOUT_CRITICAL = 0.2  # a yes/no with no critical answer (道路・がけ崩れ): yes
COUNT_MEDIAN = 40
HAS_NEED = 0.35  # a free-text question: the organization has something to say
NEEDS = [
    "毛布が足りない",
    "飲料水が不足",
    "簡易トイレが必要",
    "高齢者の避難に手助けが必要",
    "発電機の燃料がほしい",
]
# SMS replies that acknowledge (or answer 2/3): a person who answers at once writes the
# answers instead. A report in words stays as it is.
_ACKNOWLEDGING = {"1", "１", "了解", "OK", "はい", "りょうかいです", "2", "３"}
_WIDE = str.maketrans("0123456789", "０１２３４５６７８９")
_SUCCESSFUL_KEYS = ("1", "9 1", "5 1")  # the keypad entries that acknowledge

# Email: read soon by staff at desks, rarely by elderly leaders during the day.
EMAIL_READER = {False: 0.70, True: 0.35}
EMAIL_READ_MEDIAN = {False: 6 * MINUTE, True: 15 * MINUTE}
SIGMA = 1.0

# --- the line -----------------------------------------------------------------------------
SMS_DELIVERED = 0.97  # else undelivered (phone off for days, out of coverage, filtered)
MOBILE_VOICEMAIL = 0.65  # a carrier voicemail answers an unanswered mobile
LANDLINE_MACHINE = {False: 0.60, True: 0.85}  # a home answering machine answers unanswered calls
# Elderly households told to keep the machine on always against phone fraud: it answers every
# call first and the person only calls back people they know.
SCREENING = {False: 0.02, True: 0.12}
EMAIL_ACCEPTED = 0.98


@dataclass(frozen=True)
class Question:
    """A situation-report question as the person sees it on the form: answered 1..options
    (choice, yes/no: 1 はい 2 いいえ), a whole number within [minimum, maximum], or text."""

    id: str
    kind: Literal["choice", "number", "yes_no", "text"]
    label: str  # Japanese, as on the form (人的被害, 避難者数)
    required: bool = False
    options: int = 2
    minimum: int = 0
    maximum: int = 0
    critical: tuple[int, ...] = ()  # the options that are bad news


@dataclass(frozen=True)
class Recipient:
    address: str  # E.164 or email address
    kind: PathKind
    elderly: bool = False  # an association's leader: more answering machines, keypad trouble
    person: str | None = None  # addresses with the same person share one presence; None: own
    org: str | None = None  # the organization: its situation is the same for every contact
    questions: tuple[Question, ...] = ()  # what the organization is asked, in order


@dataclass(frozen=True)
class Report:
    """How one person answers their organization's questions."""

    questions: tuple[Question, ...]
    answers: dict[str, str]  # question id -> answer as they give it on the form
    style: str  # now | later | never
    writes: str  # digits | wide | named


@dataclass(frozen=True)
class Person:
    """What one contact does, whichever address the relay uses."""

    elderly: bool
    away_until: float  # simulated seconds after the alert; 0 = there from the start
    keypad: str | None  # Gather entries, None = no key, "hangup" = puts the phone down
    speech: str | None  # said when a call invites a spoken answer; None = keys only
    hang_up_after: float
    sms_read_after: float | None  # None = does not read texts
    sms_action: str  # reply | link | none
    sms_reply: str
    link_answer: str
    act_after: float
    email_read_after: float | None  # None = does not read mail in time


@dataclass(frozen=True)
class Line:
    """What sits on one address."""

    kind: PathKind
    person: Person
    sms_delivered: bool = True
    machine: bool = False  # voicemail or answering machine answers when nobody does
    screening: bool = False  # the machine answers every call first
    email_accepted: bool = True
    report: Report | None = None  # the organization is asked questions


def _lognormal(rng: random.Random, median: float, sigma: float = SIGMA) -> float:
    return rng.lognormvariate(math.log(median), sigma)


def _pick(rng: random.Random, table: list[tuple[T, float]]) -> T:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def draw_person(rng: random.Random, elderly: bool, speech_rng: random.Random) -> Person:
    """`speech_rng` draws the spoken answer apart from `rng`, so adding it left every other
    trait of a seed's population as it was (the 2015 calibration holds)."""
    roll = rng.random()
    if roll < LONG_AWAY:
        away = max(20 * MINUTE, _lognormal(rng, 60 * MINUTE, 0.6))
    elif roll < LONG_AWAY + SHORT_AWAY:
        away = rng.uniform(1 * MINUTE, 15 * MINUTE)
    else:
        away = 0.0
    reads_sms = rng.random() < SMS_READER[elderly]
    reads_email = rng.random() < EMAIL_READER[elderly]
    keypad = _pick(rng, KEYPAD[elderly])
    speaks = speech_rng.random() < SPEAKS_WHEN_INVITED
    said = _pick(speech_rng, SPOKEN)
    return Person(
        elderly=elderly,
        away_until=round(away, 1),
        keypad=keypad,
        speech=said if speaks and keypad in KEYPAD_FAILURES else None,
        hang_up_after=round(rng.uniform(8, 25), 1),
        sms_read_after=round(_lognormal(rng, SMS_READ_MEDIAN), 1) if reads_sms else None,
        sms_action=_pick(rng, SMS_ACTION[elderly]),
        sms_reply=_pick(rng, [(t, float(w)) for t, w in REPLIES]),
        link_answer=_pick(rng, [(t, float(w)) for t, w in LINK_ANSWERS]),
        act_after=round(_lognormal(rng, ACT_MEDIAN, 0.6), 1),
        email_read_after=(
            round(_lognormal(rng, EMAIL_READ_MEDIAN[elderly]), 1) if reads_email else None
        ),
    )


def draw_line(rng: random.Random, kind: PathKind, person: Person) -> Line:
    if kind == "email":
        return Line(kind, person, email_accepted=rng.random() < EMAIL_ACCEPTED)
    if kind == "mobile":
        return Line(
            kind,
            person,
            sms_delivered=rng.random() < SMS_DELIVERED,
            machine=rng.random() < MOBILE_VOICEMAIL,
        )
    return Line(
        kind,
        person,
        machine=rng.random() < LANDLINE_MACHINE[person.elderly],
        screening=rng.random() < SCREENING[person.elderly],
    )


def behaviour_at(line: Line, now: float, chance: float, reminder: bool = False) -> Behaviour:
    """The behaviour of a request to `line` made `now` simulated seconds after the alert;
    `chance` is this request's own uniform draw (pickup, busy); `reminder`: the message is the
    reminder to send the situation report."""
    b = _behaviour_at(line, now, chance)
    if line.report is not None:
        _reports(b, line.person, line.report, reminder)
    return b


def _behaviour_at(line: Line, now: float, chance: float) -> Behaviour:
    p = line.person
    if line.kind == "email":
        b = Behaviour(email_outcome="accept" if line.email_accepted else "reject")
        if p.email_read_after is not None:
            read_at = max(now, p.away_until) + p.email_read_after
            b.email_link_answer = "1"
            b.email_link_delay = round(read_at + p.act_after - now, 1)
        return b
    b = Behaviour(line="mobile" if line.kind == "mobile" else "landline")
    if line.kind == "mobile":
        b.sms_outcome = "delivered" if line.sms_delivered else "undelivered"
        b.sms_sent_delay, b.sms_delivery_delay = 1.0, 4.0
        arrives = now + b.sms_sent_delay + b.sms_delivery_delay
        if p.sms_read_after is not None and p.sms_action != "none":
            acted = max(arrives, p.away_until) + p.sms_read_after + p.act_after - arrives
            if p.sms_action == "reply":
                b.sms_reply, b.sms_reply_delay = p.sms_reply, round(acted, 1)
            else:
                b.link_answer, b.link_delay = p.link_answer, round(acted, 1)
    # A call: rings for a few seconds; the person takes it if there, and not screened.
    b.ring_delay = 3.0
    present = now + 15 >= p.away_until
    if line.screening:
        b.call_outcome, b.answer_delay = "machine", 20.0
    elif present and chance < PICKUP_WHEN_PRESENT:
        b.call_outcome, b.answer_delay = "human", round(5 + 10 * chance / PICKUP_WHEN_PRESENT, 1)
    elif chance > 1 - BUSY:
        b.call_outcome = "busy"
    elif line.machine:
        b.call_outcome, b.answer_delay = "machine", 20.0
    else:
        b.call_outcome, b.answer_delay = "no-answer", 30.0
    if p.keypad == "hangup":
        b.digits, b.hang_up_after = None, p.hang_up_after
    else:
        b.digits, b.speech = p.keypad, p.speech
    return b


def _reports(b: Behaviour, p: Person, report: Report, reminder: bool) -> None:
    """What the person does about the questions: with the acknowledgement (style "now"), or
    when the reminder comes (unless they never answer: then they ignore it)."""
    if reminder:
        b.reminder = True
        b.digits = b.speech = None
        answers = report.style != "never"
        writes = "digits" if report.writes == "named" else report.writes  # the rest, in order
        if b.email_link_answer is not None:
            b.email_link_answer = None
            b.email_link_form = dict(report.answers) if answers else None
        if b.sms_reply is not None:
            b.sms_reply, b.reply_answers = (
                sms_answers(report.questions, report.answers, writes) if answers else (None, None)
            )
        if b.link_answer is not None:
            b.link_answer = None
            b.link_form = dict(report.answers) if answers else None
        return
    if report.style != "now":
        return
    # The button stays the fallback: a page that asks nothing (another message's link).
    if b.email_link_answer is not None:
        b.email_link_form = dict(report.answers)
    if b.sms_reply in _ACKNOWLEDGING:
        b.sms_reply, b.reply_answers = sms_answers(report.questions, report.answers, report.writes)
    if b.link_answer is not None:
        b.link_form = dict(report.answers)
    if p.keypad in _SUCCESSFUL_KEYS and b.digits == p.keypad:
        keyed = [q for q in report.questions if q.required and q.kind != "text"]
        keyed = [q for q in keyed if q.id in report.answers]
        if keyed:
            b.digits = " ".join([p.keypad, *(report.answers[q.id] for q in keyed)])
            b.digit_answers = [q.id for q in keyed]


def _written_name(question: Question) -> str:
    """How a person names a question in an SMS: a count without 数 (避難者 for 避難者数)."""
    label = question.label
    return label[:-1] if question.kind == "number" and label.endswith("数") else label


def sms_answers(
    questions: tuple[Question, ...], answers: dict[str, str], writes: str
) -> tuple[str, dict[str, str]]:
    """The SMS a person writes to give `answers`, and what it answers: numbers in question
    order (0 skips a choice; words after them answer the first free-text question), the same
    in full-width digits with ideographic spaces, or by name — the counts only if there are
    any (`避難者 45`), else the required questions."""
    if writes == "named":
        counts = [q for q in questions if q.kind == "number" and q.id in answers]
        chosen = counts or [
            q for q in questions if q.required and q.kind != "text" and q.id in answers
        ]
        if chosen:
            text = " ".join(f"{_written_name(q)} {answers[q.id]}" for q in chosen)
            return text, {q.id: answers[q.id] for q in chosen}
        writes = "digits"
    words: list[str] = []
    meant: dict[str, str] = {}
    for q in (q for q in questions if q.kind != "text"):
        if q.id in answers:
            words.append(answers[q.id])
            meant[q.id] = answers[q.id]
        elif q.kind == "number":
            break  # 0 would be a count: the numbers stop here
        else:
            words.append("0")
    while words and words[-1] == "0" and len(words) > len(meant):
        words.pop()  # trailing skips
    texts = [q for q in questions if q.kind == "text"]
    if texts and texts[0].id in answers and words:
        words.append(answers[texts[0].id])
        meant[texts[0].id] = answers[texts[0].id]
    if writes == "wide":
        return "　".join(w.translate(_WIDE) for w in words), meant
    return " ".join(words), meant


def draw_situation(rng: random.Random, questions: tuple[Question, ...]) -> dict[str, str]:
    """An organization's situation: its answer to every question it has an answer for."""
    found: dict[str, str] = {}
    for q in questions:
        if q.kind in ("choice", "yes_no"):
            usual = [n for n in range(1, q.options + 1) if n not in q.critical]
            weights = {n: CRITICAL_ANSWER for n in q.critical}
            if q.kind == "yes_no" and not q.critical:
                weights.update({1: YES_WITHOUT_CRITICAL, 2: 1 - YES_WITHOUT_CRITICAL})
            elif usual:
                rest = (1 - USUAL_ANSWER) / max(1, len(usual) - 1)
                weights.update({n: USUAL_ANSWER if i == 0 else rest for i, n in enumerate(usual)})
            found[q.id] = str(_pick(rng, list(weights.items())))
        elif q.kind == "number":
            median = max(q.minimum + 1, min(COUNT_MEDIAN, q.maximum // 20))
            count = round(_lognormal(rng, median, 0.8))
            found[q.id] = str(min(q.maximum, max(q.minimum, count)))
        elif rng.random() < HAS_NEED:
            found[q.id] = rng.choice(NEEDS)
    return found


def draw_report(
    rng: random.Random, elderly: bool, questions: tuple[Question, ...], situation: dict[str, str]
) -> Report:
    """How one person reports `situation`: every required answer, and an optional one they
    have something to say about with OPTIONAL_ANSWERED."""
    answers = {
        q.id: situation[q.id]
        for q in questions
        if q.id in situation and (q.required or rng.random() < OPTIONAL_ANSWERED)
    }
    style = _pick(rng, REPORT_STYLE[elderly])
    return Report(questions, answers, style, _pick(rng, SMS_WRITES))


@dataclass
class ReachPopulation(Population):
    """A population whose behaviours depend on the simulated time of each request.

    Behaviours set explicitly (`set`, POST /_sim/behaviours) still win. The clock starts at
    the first request the carrier gets (or at `start()`): the relay's own work before it is
    not played on the people's clock.
    """

    lines: dict[str, Line] = field(default_factory=dict)
    clock: Callable[[], float] | None = None  # simulated seconds since start; tests set it
    origin: float | None = field(default=None, init=False, compare=False)  # time.monotonic()
    origin_wall: float | None = field(default=None, init=False, compare=False)  # time.time()
    _uses: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def start(self) -> None:
        """The clock's 0 is now: the first request reaches the carrier."""
        self.origin, self.origin_wall = time.monotonic(), time.time()

    def restart(self) -> None:
        """A new alert: the clock starts again at its first request, per-call draws over."""
        self.origin = self.origin_wall = None
        self._uses.clear()
        self._links.clear()

    def now(self) -> float:
        if self.clock is not None:
            return self.clock()
        if self.origin is None:
            self.start()
        assert self.origin is not None
        return (time.monotonic() - self.origin) * self.speed

    def behaviour_for(self, key: str, text: str | None = None) -> Behaviour:
        k = normalise_key(key)
        line = self.lines.get(k)
        if k in self.behaviours or line is None:
            return super().behaviour_for(key, text)
        n = self._uses.get(k, 0)
        self._uses[k] = n + 1
        reminder = text is not None and line.report is not None and self.recognises(k, text)
        return behaviour_at(line, self.now(), self.draw("request", k, n), reminder)


def realistic_population(
    recipients: Iterable[Recipient], seed: int, speed: float
) -> ReachPopulation:
    """Each person and address gets its traits, drawn from `seed` in the order given; an
    organization asked questions gets its situation, each of its people how they report it."""
    rng = random.Random(seed)
    speech_rng = random.Random(f"{seed}|speech")
    report_rng = random.Random(f"{seed}|report")
    population = ReachPopulation(seed=seed, speed=speed)
    people: dict[str, Person] = {}
    reports: dict[str, Report] = {}
    situations: dict[str, dict[str, str]] = {}
    for r in recipients:
        who = r.person or normalise_key(r.address)
        person = people.get(who)
        if person is None:
            person = people[who] = draw_person(rng, r.elderly, speech_rng)
        kind: PathKind = "landline" if r.kind == "ip_phone" else r.kind
        line = draw_line(rng, kind, person)
        if r.questions:
            org = r.org or who
            if org not in situations:
                situations[org] = draw_situation(random.Random(f"{seed}|{org}"), r.questions)
            if who not in reports:
                reports[who] = draw_report(report_rng, r.elderly, r.questions, situations[org])
            line = replace(line, report=reports[who])
        population.lines[normalise_key(r.address)] = line
    return population
