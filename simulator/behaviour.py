"""How each simulated recipient (phone number or mailbox) behaves.

A `Behaviour` is plain data, keyed in a `Population` by E.164 number or email address; unknown
recipients get `Population.default` (deliver and stay silent). Delays are simulated seconds:
the simulator divides them by the population's `speed`, so speed=60 plays a minute in a
second. Fault counters (`http_500_times`, ...) apply to the first N API requests to that
number, in the order 500s, 429s, timeouts, resets; then requests succeed. A "timeout" accepts
the request (the message does go out) but answers only after `hang_seconds`, past the client's
timeout: the ambiguous outcome a sender must reconcile rather than blindly resend.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args

from .links import urls

LineKind = Literal["mobile", "landline", "ip", "unreachable", "invalid"]
SmsOutcome = Literal["delivered", "undelivered", "failed"]
CallOutcome = Literal["human", "machine", "no-answer", "busy", "failed"]
EmailOutcome = Literal["accept", "reject"]

_CHOICES: dict[str, tuple[str, ...]] = {
    "line": get_args(LineKind),
    "sms_outcome": get_args(SmsOutcome),
    "call_outcome": get_args(CallOutcome),
    "email_outcome": get_args(EmailOutcome),
}


@dataclass
class Behaviour:
    """One recipient. Defaults: a mobile phone and mailbox that receive and never answer."""

    line: LineKind = "mobile"
    unsubscribed: bool = False  # replied STOP earlier: SMS refused with 21610

    # SMS: queued -> sent after sms_sent_delay -> outcome after sms_delivery_delay.
    sms_outcome: SmsOutcome = "delivered"
    sms_error_code: int | None = None  # None: 30003 undelivered, 30005 failed, 30006 ip line
    sms_sent_delay: float = 1.0
    sms_delivery_delay: float = 3.0
    sms_reply: str | None = None  # text replied after delivery; None = no reply
    sms_reply_delay: float = 30.0
    # The situation-report answers sms_reply carries (question id -> the answer as the person
    # means it, e.g. {"injured": "1", "sheltering": "45"}): what the log records the person
    # answered. None: the reply answers nothing (an acknowledgement, a report).
    reply_answers: dict[str, str] | None = None
    link_answer: str | None = None  # answer posted after tapping the SMS link; None = never
    link_delay: float = 45.0
    # Situation-report answers sent with the link page's form (question id -> value, e.g.
    # {"injured": "1", "needs": "毛布"}) after link_delay, instead of link_answer's button.
    link_form: dict[str, str] | None = None
    # What the recipient does with a reminder — a later text or email carrying a link they
    # already got — instead of this (None: the same again). The behaviour used for it has
    # `reminder` set: whatever they send back is logged as answering a reminder.
    on_reminder: Behaviour | None = None
    reminder: bool = False

    # Voice: rings after ring_delay, picked up (or not) after answer_delay.
    call_outcome: CallOutcome = "human"
    ring_delay: float = 3.0
    answer_delay: float = 8.0
    # Keys pressed, one space-separated entry per <Gather> reached ("9 1": repeat, then
    # acknowledge); None or no entries left = let the Gather time out.
    digits: str | None = None
    digits_delay: float = 6.0  # after the Gather starts
    # Said (posted as SpeechResult) at the first <Gather> that listens for speech, instead of
    # pressing a key; later Gathers take `digits`. None = never speaks to the machine.
    speech: str | None = None
    # Question ids the last entries of `digits` answer, in order ("1 1 3 2" with ["injured",
    # "buildings", "fire"]: acknowledge, then three answers), for the log.
    digit_answers: list[str] | None = None
    hang_up_after: float | None = None  # caller hangs up this long after answering

    # Email: 451 for the first email_defer_times deliveries, then accept or 550.
    email_outcome: EmailOutcome = "accept"
    email_defer_times: int = 0
    email_link_answer: str | None = None
    email_link_delay: float = 120.0
    email_link_form: dict[str, str] | None = None  # like link_form, from the email's link

    # API faults for requests to this number (not divided by speed: they race real timeouts).
    http_500_times: int = 0
    http_429_times: int = 0
    retry_after: float = 1.0  # seconds, sent in Retry-After with a 429
    timeout_times: int = 0
    hang_seconds: float = 30.0  # a "timeout" answers only after this long
    reset_times: int = 0

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name}={value!r}: expected one of {', '.join(allowed)}")

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that differ from the defaults, for short JSON."""
        default = Behaviour()
        return {k: v for k, v in asdict(self).items() if getattr(default, k) != v}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Behaviour:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown behaviour field(s): {', '.join(unknown)}")
        nested = data.get("on_reminder")
        if isinstance(nested, dict):
            data = {**data, "on_reminder": cls.from_dict(nested)}
        return cls(**data)


@dataclass
class FaultRates:
    """Fractions of all API requests answered with a fault, drawn reproducibly from the seed."""

    http_500: float = 0.0
    http_429: float = 0.0
    timeout: float = 0.0
    reset: float = 0.0
    retry_after: float = 1.0
    hang_seconds: float = 30.0

    @property
    def any(self) -> bool:
        return self.http_500 + self.http_429 + self.timeout + self.reset > 0


@dataclass
class Population:
    """Every recipient's behaviour, the seed for anything random, and the time compression."""

    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    default: Behaviour = field(default_factory=Behaviour)
    seed: int = 0
    speed: float = 1.0
    faults: FaultRates = field(default_factory=FaultRates)
    rng: random.Random = field(init=False, repr=False, compare=False)
    # Links each recipient got in a text or email: one that comes again is a reminder.
    _links: dict[str, set[str]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError("speed must be positive")
        self.behaviours = {normalise_key(k): v for k, v in self.behaviours.items()}
        self.rng = random.Random(self.seed)

    def behaviour_for(self, key: str, text: str | None = None) -> Behaviour:
        """The behaviour for a request to `key`; `text` is the SMS or email it carries: one
        with a link the recipient already got is a reminder (`Behaviour.on_reminder`)."""
        behaviour = self.behaviours.get(normalise_key(key), self.default)
        # Links are remembered only for recipients with an on_reminder (set it before the
        # first message): a benchmark's thousands of recipients keep nothing.
        if behaviour.on_reminder and text is not None and self.recognises(key, text):
            return replace(behaviour.on_reminder, reminder=True)
        return behaviour

    def recognises(self, key: str, text: str) -> bool:
        """Whether `text` carries a link `key` already got in an earlier text or email; the
        links are remembered either way."""
        found = urls(text)
        seen = self._links.setdefault(normalise_key(key), set())
        known = bool(found & seen)
        seen |= found
        return known

    def set(self, key: str, behaviour: Behaviour) -> None:
        self.behaviours[normalise_key(key)] = behaviour

    def draw(self, *key: object) -> float:
        """A uniform [0, 1) number fixed by the seed and `key`, whatever order requests arrive
        in — so a concurrent run injects the same faults into the same requests each time."""
        return random.Random("|".join(map(str, (self.seed, *key)))).random()

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "speed": self.speed,
            "faults": asdict(self.faults),
            "default": self.default.to_dict(),
            "behaviours": {k: b.to_dict() for k, b in self.behaviours.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Population:
        unknown = sorted(set(data) - {"seed", "speed", "faults", "default", "behaviours"})
        if unknown:
            raise ValueError(f"unknown population field(s): {', '.join(unknown)}")
        return cls(
            behaviours={k: Behaviour.from_dict(v) for k, v in data.get("behaviours", {}).items()},
            default=Behaviour.from_dict(data.get("default", {})),
            seed=int(data.get("seed", 0)),
            speed=float(data.get("speed", 1.0)),
            faults=FaultRates(**data.get("faults", {})),
        )

    @classmethod
    def load(cls, path: str | Path) -> Population:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def dump(self, path: str | Path) -> None:
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=2)
        Path(path).write_text(text + "\n", encoding="utf-8")


def normalise_key(key: str) -> str:
    """Numbers as given (E.164), email addresses case-folded: mail domains are case-blind."""
    key = key.strip()
    return key.lower() if "@" in key else key
