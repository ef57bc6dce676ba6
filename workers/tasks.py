"""Thin tasks: take ids, call one relay service, return. Policy lives in relay/."""

from __future__ import annotations

import logging

from relay.alerts import planning
from relay.delivery import sending
from relay.delivery.runtime import set_publisher
from relay.drills import service
from workers.app import app
from workers.base import RelayTask

log = logging.getLogger(__name__)


@app.task(base=RelayTask, bind=True, name="relay.dispatch_alert")
def dispatch_alert(self: RelayTask, alert_id: int, start: int | None = None) -> int:
    """Plan the next slice of an alert that is still being planned (relay/alerts/planning.py)."""
    runtime = self.runtime
    with runtime.sessions.begin() as session:
        planned = planning.continue_planning(session, runtime.settings, alert_id, start)
    log.info("alert %s: %d more recipients planned", alert_id, planned)
    runtime.publish_outbox()
    return planned


@app.task(base=RelayTask, bind=True, name="relay.send_batch")
def send_batch(self: RelayTask, channel: str, ids: list[int], alert_id: int | None = None) -> int:
    # alert_id is only for the log context (RelayTask.__call__); older messages lack it.
    runtime = self.runtime
    result = runtime.run(sending.send_batch(runtime.sessions, runtime.senders, channel, ids))
    log.info(
        "%s batch: %d sent, %d failed, %d unknown, %d to retry",
        channel, result.sent, result.failed, result.ambiguous, len(result.retry),
    )  # fmt: skip
    if result.retry:
        self.retry_later(result.retry_after)
    return result.sent


@app.task(base=RelayTask, bind=True, name="relay.run_drill")
def run_drill(self: RelayTask, run_id: int) -> int | None:
    runtime = self.runtime
    with runtime.sessions.begin() as session:
        alert_id = service.start_run(session, runtime.settings, run_id)
    runtime.publish_outbox()
    return alert_id


@app.task(base=RelayTask, bind=True, name="relay.sweep")
def sweep(self: RelayTask) -> int:
    """Republish what was committed but never published."""
    return self.runtime.publish_outbox(older_than_s=5.0)


def publish(topic: str, payload: dict[str, object]) -> None:
    """The outbox publisher: one topic, one task."""
    queue = str(payload.get("queue", "alerts"))
    if topic == "dispatch_alert":
        kwargs = {"alert_id": payload["alert_id"], "start": payload.get("start")}
        dispatch_alert.apply_async(kwargs=kwargs, queue=queue)
    elif topic == "send_batch":
        kwargs = {"channel": payload["channel"], "ids": payload["ids"]}
        if "alert_id" in payload:
            kwargs["alert_id"] = payload["alert_id"]
        send_batch.apply_async(kwargs=kwargs, queue=queue)
    elif topic == "run_drill":
        # A deterministic id: the same run published twice is visibly the same task.
        run_drill.apply_async(
            kwargs={"run_id": payload["run_id"]},
            queue=queue,
            task_id=f"drill-run-{payload['run_id']}",
        )
    else:
        raise ValueError(f"unknown outbox topic {topic!r}")


set_publisher(publish)
