"""The delivery state machine: states only move forward (SPEC 4.2).

Late, repeated or reordered provider callbacks never move a delivery back: a transition is
taken only to a state of higher rank, and never out of a final state. Provider words are mapped
to `channels.base.Outcome` at the channel edge; this module maps outcomes to our states.
"""

from __future__ import annotations

from channels.base import Outcome

PLANNED = "planned"  # a later escalation step, not yet due
QUEUED = "queued"  # due; waiting for a send task
SENDING = "sending"  # claimed by a send task
UNKNOWN = "unknown"  # the send's outcome is ambiguous (timeout after the request left)
ACCEPTED = "accepted"  # the provider took it (Twilio "queued", has a SID)
SENT = "sent"  # handed to the carrier / accepted by the mail server
DELIVERED = "delivered"  # the handset confirmed (SMS)
ANSWERED = "answered"  # a person picked up the call
COMPLETED = "completed"  # the call a person answered has ended
CANCELLED = "cancelled"  # never sent: the alert was cancelled or the recipient acknowledged

NOT_REACHED = ("failed", "undelivered", "no_answer", "busy", "machine", "bounced")

RANK: dict[str, int] = {
    PLANNED: 0,
    QUEUED: 1,
    SENDING: 2,
    UNKNOWN: 2,
    ACCEPTED: 3,
    SENT: 4,
    DELIVERED: 5,
    ANSWERED: 5,
    COMPLETED: 6,
    **dict.fromkeys(NOT_REACHED, 7),
    CANCELLED: 8,
}
FINAL = frozenset({DELIVERED, COMPLETED, CANCELLED, *NOT_REACHED})
# States in which the provider has the message: it counts as sent.
SENT_STATES = frozenset({ACCEPTED, SENT, DELIVERED, ANSWERED, COMPLETED, *NOT_REACHED})

_FROM_OUTCOME = {
    Outcome.QUEUED: ACCEPTED,
    Outcome.SENT: SENT,
    Outcome.DELIVERED: DELIVERED,
    Outcome.ANSWERED: ANSWERED,
    Outcome.COMPLETED: COMPLETED,
    Outcome.FAILED: "failed",
    Outcome.UNDELIVERED: "undelivered",
    Outcome.NO_ANSWER: "no_answer",
    Outcome.BUSY: "busy",
    Outcome.MACHINE: "machine",
    Outcome.BOUNCED: "bounced",
}


def state_for(outcome: Outcome) -> str:
    return _FROM_OUTCOME[outcome]


def advance(current: str, new: str) -> str | None:
    """The state to move to, or None when `new` would not move the delivery forward."""
    if current in FINAL or RANK[new] <= RANK[current]:
        return None
    if current == ANSWERED and new in NOT_REACHED and new != "machine":
        # A call a person answered was reached; a later "failed"/"busy" is noise.
        return COMPLETED
    return new


def is_final(channel: str, state: str) -> bool:
    """Nothing more will be heard about this delivery. Email has no delivery receipts: the
    receiving server's acceptance (`sent`) is the last word, unless a bounce comes later."""
    return state in FINAL or (channel == "email" and state == SENT)
