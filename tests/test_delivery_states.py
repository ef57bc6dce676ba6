"""Deliveries move forward only, whatever order callbacks arrive in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relay.delivery.states import FINAL, RANK, advance

STATES = list(RANK)


def test_typical_paths() -> None:
    assert advance("sending", "accepted") == "accepted"
    assert advance("accepted", "sent") == "sent"
    assert advance("sent", "delivered") == "delivered"
    assert advance("delivered", "sent") is None  # late "sent" after "delivered"
    assert advance("delivered", "undelivered") is None  # final stays final
    assert advance("accepted", "delivered") == "delivered"  # "sent" lost or late
    assert advance("answered", "machine") == "machine"
    assert advance("answered", "completed") == "completed"
    assert advance("failed", "delivered") is None
    assert advance("sending", "sending") is None


@given(st.sampled_from(STATES), st.lists(st.sampled_from(STATES), max_size=12))
def test_any_sequence_only_moves_forward(start: str, events: list[str]) -> None:
    state = start
    for new in events:
        moved = advance(state, new)
        if moved is not None:
            assert state not in FINAL
            assert RANK[moved] > RANK[state] or moved == "completed"
            state = moved
