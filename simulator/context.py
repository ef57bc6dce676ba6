"""State shared by the simulator's parts (API, recipients, SMTP), owned by CarrierSimulator."""

from __future__ import annotations

from dataclasses import dataclass, field

from .behaviour import Population
from .callbacks import Courier
from .log import SimLog
from .resources import Call, Message
from .scheduler import Scheduler


@dataclass(frozen=True)
class Violation:
    """A request Twilio would refuse: the relay under test sent something wrong."""

    method: str
    path: str
    errors: tuple[str, ...]
    params: dict[str, list[str]]


@dataclass
class Context:
    account_sid: str
    population: Population
    scheduler: Scheduler
    courier: Courier
    log: SimLog
    sms_webhook_url: str
    link_base: str
    service_number: str  # From of messages sent through a Messaging Service only
    callbacks: bool  # False: fast mode, accept and do nothing more
    messages: dict[str, Message] = field(default_factory=dict)
    calls: dict[str, Call] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)  # (channel, to) -> n

    def next_attempt(self, channel: str, to: str) -> int:
        """0-based index of this request among all requests to `to` on `channel`."""
        key = (channel, to.lower())
        n = self.attempts.get(key, 0)
        self.attempts[key] = n + 1
        return n

    def reset(self) -> None:
        self.log.clear()
        self.messages.clear()
        self.calls.clear()
        self.violations.clear()
        self.attempts.clear()
