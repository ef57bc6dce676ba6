"""What the simulator saw and did, kept whole: it is a test peer, so nothing is masked."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Kind = Literal[
    "sms",  # Messages.json create received
    "call",  # Calls.json create received
    "email",  # a mail (or a refused RCPT) on the SMTP server
    "status_callback",  # a message or call status posted to the relay
    "inbound_sms",  # a recipient's SMS reply posted to the relay's webhook
    "twiml_fetch",  # the call's TwiML fetched from Url, a Redirect, or a Gather action's reply
    "gather",  # a keypress posted to a Gather action
    "link_get",  # a recipient opened an acknowledgement link
    "link_post",  # ... and pressed its answer button
]
API_KINDS = frozenset({"sms", "call", "email"})


@dataclass(slots=True)
class LogRecord:
    kind: Kind
    to: str | None = None
    from_: str | None = None
    sid: str | None = None  # Twilio SID or email Message-ID
    segments: int = 0
    body: str | None = None  # SMS text (sent or replied), email text, call's Url or TwiML
    response: str | None = None  # what the relay answered a request the simulator made
    status: int = 0  # HTTP/SMTP status answered (or received, for requests we made); 0 = none
    result: str = ""  # what happened, e.g. "accepted", "21211", "timeout", "retry", "delivered"
    url: str | None = None  # for requests the simulator made
    params: dict[str, str] = field(default_factory=dict)  # form fields sent or received
    subject: str | None = None
    html: str | None = None
    # Requests a recipient made with situation-report answers (an SMS reply, the link's form,
    # a key in a call): what they meant to answer, question id -> answer as given.
    answers: dict[str, str] = field(default_factory=dict)
    # An SMS or email the recipient recognised as a reminder, or what they sent in answer to it.
    reminded: bool = False
    mono: float = field(default_factory=time.monotonic)  # time.monotonic() at the event
    # Requests the simulator made: time.monotonic() as the request left (`mono` is when the
    # relay's answer came back). What the relay did with it happened in between.
    sent_mono: float | None = None
    wall: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SimLog(list[LogRecord]):
    """Append-only list of records with the queries tests need."""

    def of_kind(self, *kinds: Kind) -> list[LogRecord]:
        return [r for r in list(self) if r.kind in kinds]

    def requests_to(self, recipient: str) -> list[LogRecord]:
        """API requests (SMS, call) and emails addressed to one number or address."""
        key = recipient.lower()
        return [
            r
            for r in list(self)
            if r.kind in API_KINDS and r.to is not None and r.to.lower() == key
        ]

    def sms_requests(self) -> list[LogRecord]:
        return self.of_kind("sms")

    def callbacks_for(self, sid: str) -> list[LogRecord]:
        """Status callbacks sent for one message or call, in sending order."""
        return [r for r in list(self) if r.kind == "status_callback" and r.sid == sid]

    def count_by_kind(self) -> dict[str, int]:
        return dict(Counter(r.kind for r in list(self)))

    def window_max(
        self,
        kind: Kind,
        seconds: float = 1.0,
        weight: Literal["segments", "count"] = "segments",
        *,
        accepted_only: bool = False,
    ) -> int:
        """The largest total weight of `kind` records received within any `seconds`-long window.

        weight="segments" sums SMS segments (what Twilio's per-second limits count); "count"
        counts requests. accepted_only skips requests that were refused (4xx/5xx, resets).
        """
        records = [r for r in self.of_kind(kind) if not accepted_only or 200 <= r.status < 300]
        return window_max(
            ((r.mono, r.segments if weight == "segments" else 1) for r in records), seconds
        )


def window_max(points: Iterable[tuple[float, int]], seconds: float) -> int:
    """Max sum of weights of points whose times fall in some half-open [t, t + seconds)."""
    ordered = sorted(points)
    best = total = start = 0
    for t_end, w_end in ordered:
        total += w_end
        while ordered[start][0] <= t_end - seconds:
            total -= ordered[start][1]
            start += 1
        best = max(best, total)
    return best
