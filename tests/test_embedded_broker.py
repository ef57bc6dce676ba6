"""The embedded broker (SQLite, the default `RELAY_BROKER_URL=embedded`) serves `alerts` before
`exercises`, as Redis does: a real alert published behind a drill's tasks is taken first.
kombu's SQLAlchemy transport polled its queues round robin (alerts, exercises, alerts, ...)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kombu import Consumer, Message, Producer

from relay.delivery.outbox import QUEUES
from workers.app import make_app


def test_alerts_are_taken_before_exercises_already_queued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RELAY_BROKER_URL")  # conftest's Redis: the default applies
    monkeypatch.delenv("RELAY_BROKER_PREFIX")
    monkeypatch.setenv("RELAY_WORKDIR", str(tmp_path / "var"))
    app = make_app()  # the app `relay worker` runs, on the defaults
    queues = app.conf.task_queues
    assert [q.name for q in queues] == list(QUEUES)
    taken: list[str] = []

    def on_message(body: str, message: Message) -> None:
        taken.append(body)
        message.ack()

    with app.connection_for_write() as conn:
        producer = Producer(conn.default_channel)
        for n in range(4):  # a drill's batches, queued first
            producer.publish(f"drill {n}", routing_key="exercises", declare=queues)
        for n in range(2):  # then a real alert's
            producer.publish(f"real {n}", routing_key="alerts", declare=queues)
    # As the worker consumes: both queues, in the order of --queues=alerts,exercises.
    with (
        app.connection_for_read() as conn,
        Consumer(conn, queues=queues, callbacks=[on_message], prefetch_count=1),
    ):
        while len(taken) < 6:
            conn.drain_events(timeout=10)
    assert taken == ["real 0", "real 1", "drill 0", "drill 1", "drill 2", "drill 3"]
    assert (tmp_path / "var" / "broker.sqlite").exists()  # the embedded broker, not memory
