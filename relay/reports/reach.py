"""Reach (issue 10, ops/REACH.md): how many organizations acknowledge, how fast, and at what
cost — the ward's 2015 design against the relay's cascade, on the same simulated population.

The 2015 design is one voice round to every organization's primary contact, answered with a
key, with no retry and no other channel: a blast alert on voice to exactly those contacts. The
cascade is the relay's default (`IssueRequest`'s timing). Both go through the real pipeline;
this module builds their requests and computes the figures, from the relay's database and,
independently, from the carrier simulator's record of what its people did, so the two can be
checked against each other.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relay.alerts.issuing import IssueRequest
from relay.directory.audience import Audience, resolve
from relay.models import Alert, Delivery, InboundMessage, Organization, Recipient
from relay.replies.parsing import parse_reply
from relay.reports.formats import _line_chart
from relay.timefmt import local

MARKS_MIN = (5, 15, 30)
DESIGN_2015, CASCADE = "2015", "cascade"
LABELS = {
    DESIGN_2015: "2015年方式（電話1回・ボタン回答）",
    CASCADE: "リレー（段階送信）",
}
# Picked up: a person or a machine took the call (the 2015 trial's ">90% picked up").
PICKED_UP = ("answered", "completed", "machine")
TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "web"


def primary_contacts(session: Session) -> list[int]:
    """Each active organization's first contact (lowest priority number), as issuing would
    pick them: the 2015 system called one registered leader per organization."""
    first: dict[int, tuple[int, int]] = {}
    for contact in resolve(session, Audience(everyone=True)):
        known = first.get(contact.organization_id)
        if known is None or contact.priority < known[0]:
            first[contact.organization_id] = (contact.priority, contact.contact_id)
    return sorted(cid for _, cid in first.values())


def request_2015(session: Session, time_scale: float, ack_within: timedelta) -> IssueRequest:
    """`ack_within` in simulated time; the request carries real time, as issuing expects."""
    return IssueRequest(
        template="drill",
        audience=Audience(contact_ids=tuple(primary_contacts(session))),
        channels=("voice",),
        mode="blast",
        status="Exercise",
        ack_within=ack_within / time_scale,
        speech_answers=False,  # the 2015 system took keys only
        recall_after=None,
        issued_by="reach-2015",
        note="reach comparison: the ward's 2015 design",
        time_scale=time_scale,
    )


def request_cascade(
    time_scale: float,
    ack_within: timedelta,
    voice_after_min: float | None = None,
    next_contact_after_min: float | None = None,
    recall_after_min: float | None = None,
) -> IssueRequest:
    """The relay's default cascade: channels, mode and step delays are IssueRequest's
    defaults (unless given, in simulated minutes, to explore), run on the compressed clock."""
    default = IssueRequest(template="drill", audience=Audience(everyone=True))
    voice_after = (
        default.voice_after if voice_after_min is None else timedelta(minutes=voice_after_min)
    )
    next_contact_after = (
        default.next_contact_after
        if next_contact_after_min is None
        else timedelta(minutes=next_contact_after_min)
    )
    recall_after = default.recall_after
    if recall_after_min is not None:  # 0: no second call
        recall_after = timedelta(minutes=recall_after_min) if recall_after_min > 0 else None
    return replace(
        default,
        status="Exercise",
        ack_within=ack_within / time_scale,
        voice_after=voice_after / time_scale,
        next_contact_after=next_contact_after / time_scale,
        recall_after=None if recall_after is None else recall_after / time_scale,
        issued_by="reach-cascade",
        note="reach comparison: the relay's default cascade",
        time_scale=time_scale,
    )


def policy_of(request: IssueRequest) -> dict[str, float | None]:
    """The cascade's step delays in simulated minutes."""
    scale = request.time_scale
    return {
        "voice_after_min": round(request.voice_after.total_seconds() * scale / 60, 2),
        "next_contact_after_min": round(request.next_contact_after.total_seconds() * scale / 60, 2),
        "recall_after_min": (
            None
            if request.recall_after is None
            else round(request.recall_after.total_seconds() * scale / 60, 2)
        ),
    }


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank, as the drill report computes it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))]


@dataclass
class Figures:
    """One design's run, cut at `end_s` simulated seconds after the alert went out."""

    design: str
    organizations: int
    end_s: float
    ack_s: dict[str, float]  # organization key -> simulated seconds to its first acknowledgement
    sent: dict[str, int] = field(default_factory=dict)  # channel -> requests the provider took
    sms_segments: int = 0
    called: int = 0  # calls placed
    picked_up: int = 0  # ... taken by a person or a machine
    answered: int = 0  # ... answered with a valid key or a spoken はい
    processing_s: float = 0.0  # real seconds from issuing to the first request at the carrier
    # The simulator's record only: when the relay's answer to each first acknowledgement came
    # back (ack_s is when the person's request left); the relay's own time lies in between.
    ack_until: dict[str, float] = field(default_factory=dict)
    # The simulator's record only: answers (a key, a spoken はい, a link's button) whose request
    # got no answer from the relay — a timeout or a server error. The relay may have taken
    # them or not; the simulator cannot know, so the figures may differ by that many.
    unanswered: int = 0

    def acknowledged_by(self, seconds: float) -> int:
        return sum(1 for s in self.ack_s.values() if s <= seconds)

    @property
    def marks(self) -> dict[str, int]:
        out = {f"{m}m": self.acknowledged_by(m * 60) for m in MARKS_MIN}
        out["end"] = self.acknowledged_by(self.end_s)
        return out

    @property
    def median_s(self) -> float | None:
        times = [s for s in self.ack_s.values() if s <= self.end_s]
        return statistics.median(times) if times else None

    @property
    def p90_s(self) -> float | None:
        return percentile([s for s in self.ack_s.values() if s <= self.end_s], 0.9)

    def per_ack(self, channel: str) -> float | None:
        acked = self.marks["end"]
        return round(self.sent.get(channel, 0) / acked, 2) if acked else None

    @property
    def messages_and_calls_per_ack(self) -> float | None:
        acked = self.marks["end"]
        spent = self.sent.get("sms", 0) + self.sent.get("voice", 0)
        return round(spent / acked, 2) if acked else None

    def timeline(self, until_s: float | None = None) -> list[dict[str, float]]:
        """Share of organizations acknowledged, minute by minute. A run that ended early
        (nothing left that could still answer) stays flat after its end."""
        total = self.organizations or 1
        until = max(self.end_s, until_s or 0.0)
        return [
            {"minute": m, "rate": round(self.acknowledged_by(min(m * 60, self.end_s)) / total, 4)}
            for m in range(int(until // 60) + 1)
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "design": self.design,
            "organizations": self.organizations,
            "end_min": round(self.end_s / 60, 1),
            "processing_s": self.processing_s,
            "acknowledged": self.marks,
            "rates": {k: round(v / (self.organizations or 1), 4) for k, v in self.marks.items()},
            "median_s": _round(self.median_s),
            "p90_s": _round(self.p90_s),
            "sent": dict(sorted(self.sent.items())),
            "sms_segments": self.sms_segments,
            "per_ack": {ch: self.per_ack(ch) for ch in ("sms", "voice", "email")},
            "messages_and_calls_per_ack": self.messages_and_calls_per_ack,
            "voice": {
                "called": self.called,
                "picked_up": self.picked_up,
                "answered": self.answered,
                "picked_up_rate": _rate(self.picked_up, self.called),
                "answered_rate": _rate(self.answered, self.called),
            },
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def figures_from_db(
    session: Session, alert: Alert, design: str, end_s: float, start: datetime | None = None
) -> Figures:
    """What the relay recorded: first acknowledgement per organization, what was sent.
    Times count from `start` (default: when the alert was issued), in simulated seconds."""
    scale = float(alert.escalation.get("time_scale", 1.0))
    start = start or alert.sent_at
    orgs = set(
        session.scalars(
            select(Recipient.organization_id).where(Recipient.alert_id == alert.id).distinct()
        )
    )
    ack_s: dict[str, float] = {}
    for code, first in session.execute(
        select(Organization.code, func.min(Recipient.acknowledged_at))
        .join(Organization, Organization.id == Recipient.organization_id)
        .where(Recipient.alert_id == alert.id, Recipient.acknowledged_at.is_not(None))
        .group_by(Organization.code)
    ):
        if first is None:
            continue
        seconds = (first - start).total_seconds() * scale
        if seconds <= end_s:
            ack_s[code] = seconds
    sent: dict[str, int] = {}
    segments = called = picked = 0
    for channel, state, n, segs in session.execute(
        select(Delivery.channel, Delivery.state, func.count(), func.sum(Delivery.segments))
        .where(Delivery.alert_id == alert.id, Delivery.sent_at.is_not(None))
        .group_by(Delivery.channel, Delivery.state)
    ):
        sent[channel] = sent.get(channel, 0) + n
        if channel == "sms":
            segments += int(segs or 0)
        if channel == "voice":
            called += n
            picked += n if state in PICKED_UP else 0
    # Calls answered with a valid key or by voice (one row per call and answer), acknowledged or not
    # already: what the person did in the call, as the simulator also counts it.
    answered = (
        session.scalar(
            select(func.count())
            .select_from(InboundMessage)
            .where(
                InboundMessage.alert_id == alert.id,
                InboundMessage.channel.in_(("voice_key", "voice_speech")),
                InboundMessage.interpretation == "ack",
            )
        )
        or 0
    )
    return Figures(design, len(orgs), end_s, ack_s, sent, segments, called, picked, int(answered))


class SimRecord(Protocol):
    """The parts of simulator.log.LogRecord read here."""

    @property
    def kind(self) -> str: ...
    @property
    def to(self) -> str | None: ...
    @property
    def from_(self) -> str | None: ...
    @property
    def sid(self) -> str | None: ...
    @property
    def body(self) -> str | None: ...
    @property
    def response(self) -> str | None: ...
    @property
    def status(self) -> int: ...
    @property
    def params(self) -> dict[str, str]: ...
    @property
    def segments(self) -> int: ...
    @property
    def mono(self) -> float: ...
    @property
    def sent_mono(self) -> float | None: ...


def figures_from_record(
    records: Iterable[SimRecord],
    owner: Mapping[str, str],
    reference: str,
    design: str,
    organizations: int,
    origin: float,
    speed: float,
    end_s: float,
) -> Figures:
    """The same figures from the simulator's own record: what it accepted, what its people
    pressed, replied and tapped, and when (`origin` = time.monotonic() as the alert went out).
    Organizations are keyed by `owner` (address -> organization code)."""
    sent = {"sms": 0, "voice": 0, "email": 0}
    segments = 0
    ack_s: dict[str, float] = {}
    ack_until: dict[str, float] = {}
    outcome: dict[str, str] = {}  # call sid -> final status / AnsweredBy
    answered_calls: set[str] = set()
    unanswered = 0

    def acted(address: str | None, record: SimRecord) -> None:
        # Timed as the person's request left; the relay saw it before its answer came back.
        org = owner.get((address or "").lower())
        left = record.mono if record.sent_mono is None else record.sent_mono
        seconds = (left - origin) * speed
        if org is not None and seconds <= end_s and seconds < ack_s.get(org, float("inf")):
            ack_s[org] = seconds
            ack_until[org] = (record.mono - origin) * speed

    for r in records:
        if r.kind in ("sms", "call", "email") and (r.status in (201, 250)):
            channel = "voice" if r.kind == "call" else r.kind
            sent[channel] += 1
            segments += r.segments if r.kind == "sms" else 0
        elif r.kind == "status_callback" and r.sid and r.sid.startswith("CA"):
            status = r.params.get("CallStatus", "")
            if status in ("completed", "no-answer", "busy", "failed", "canceled"):
                outcome[r.sid] = f"{status}/{r.params.get('AnsweredBy', '')}"
        elif r.kind == "inbound_sms":
            reply = parse_reply(r.body or "")
            if reply.kind in ("ack", "answer") and reference in (r.response or ""):
                acted(r.from_, r)
        elif (r.kind == "gather" and answered_in_call(r.params)) or r.kind == "link_post":
            if r.status == 200:
                if r.kind == "gather":
                    answered_calls.add(r.sid or "")
                acted(r.to, r)
            elif r.status == 0 or r.status >= 500:
                # No answer or a server error: the relay may have taken it or not (a call
                # then hears Twilio's application error; a phone's browser an error page).
                unanswered += 1
    # A call a person or a machine took ends "completed" (the relay hangs up on machines).
    picked = sum(1 for o in outcome.values() if o.startswith("completed/"))
    return Figures(
        design,
        organizations,
        end_s,
        ack_s,
        {k: v for k, v in sent.items() if v},
        segments,
        sent["voice"],
        picked,
        len(answered_calls),
        ack_until=ack_until,
        unanswered=unanswered,
    )


def answered_in_call(params: Mapping[str, str]) -> bool:
    """A valid key, or a spoken answer the relay's parser takes for one (はい, 了解)."""
    if params.get("Digits"):
        return params["Digits"] in ("1", "2", "3")
    return parse_reply(params.get("SpeechResult") or "").kind in ("ack", "answer")


def disagreements(db: Figures, record: Figures, tolerance_s: float) -> list[str]:
    """Where the relay's figures and the simulator's record differ. Counts must be equal;
    an acknowledgement is timed by each side when it saw it — the simulator as its request
    left, the relay while answering it — so a mark may differ by the acknowledgements whose
    request was under way at the mark (give or take `tolerance_s`). On a busy machine that
    round trip is seconds of real time, minutes of a compressed clock."""

    def under_way(at: float) -> int:
        return sum(
            1
            for org, s in record.ack_s.items()
            if s - tolerance_s <= at <= record.ack_until.get(org, s) + tolerance_s
        )

    doubt = record.unanswered
    problems = []
    for channel in ("sms", "voice", "email"):
        if db.sent.get(channel, 0) != record.sent.get(channel, 0):
            problems.append(
                f"{channel}: the relay counts {db.sent.get(channel, 0)} sent, "
                f"the simulator accepted {record.sent.get(channel, 0)}"
            )
    calls_agree = (db.called, db.picked_up) == (record.called, record.picked_up)
    if not calls_agree or not record.answered <= db.answered <= record.answered + doubt:
        problems.append(
            f"calls placed/picked up/answered: relay {db.called}/{db.picked_up}/{db.answered}, "
            f"simulator {record.called}/{record.picked_up}/{record.answered}"
            + (f", and {doubt} the relay gave no answer to" if doubt else "")
        )

    def differ(relay: int, simulator: int, at: float) -> bool:
        # What the relay answered it took; what it did not answer it may have taken.
        slack = under_way(at)
        return not simulator - slack <= relay <= simulator + slack + doubt

    if differ(len(db.ack_s), len(record.ack_s), db.end_s):
        problems.append(
            f"organizations acknowledged: relay {len(db.ack_s)}, simulator {len(record.ack_s)}"
        )
    for mark in MARKS_MIN:
        a, b = db.acknowledged_by(mark * 60), record.acknowledged_by(mark * 60)
        if differ(a, b, mark * 60):
            problems.append(f"acknowledged by {mark} min: relay {a}, simulator {b}")
    return problems


@dataclass
class Comparison:
    seed: int
    speed: float
    designs: list[Figures]
    started_at: str = ""
    policy: dict[str, float | None] = field(default_factory=dict)  # the cascade's timing, minutes

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "speed": self.speed,
            "started_at": self.started_at,
            "policy": self.policy,
            "designs": {f.design: f.summary() for f in self.designs},
        }


def started_label(alert: Alert) -> str:
    return local(alert.sent_at)


_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
_COLOURS = {DESIGN_2015: "#6b7280", CASCADE: "#dc2626"}


def to_html(comparison: Comparison) -> str:
    until = max((f.end_s for f in comparison.designs), default=0.0)
    series = [
        (LABELS.get(f.design, f.design), _COLOURS.get(f.design, "#2563eb"), f.timeline(until))
        for f in comparison.designs
    ]
    return _env.get_template("reach.html").render(
        c=comparison.as_dict(),
        labels=LABELS,
        colours=_COLOURS,
        chart=_line_chart(series),
    )


def figures_json(comparison: Comparison) -> dict[str, Any]:
    data = comparison.as_dict()
    data["ack_s"] = {f.design: dict(sorted(f.ack_s.items())) for f in comparison.designs}
    return data
