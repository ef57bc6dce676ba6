"""PostgreSQL connections killed (pg_terminate_backend) again and again while a fan-out is
sending and the provider's status callbacks are being ingested: nobody is missed, no callback
is lost (the provider retries a webhook that failed), states end where the provider says."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from relay.db import transaction
from relay.models import DeliveryEvent
from simulator import Population
from tests.harness import Stack, wait_until
from tests.reliability.faults import (
    accepted_per_recipient,
    bulk_directory,
    duplicates,
    fresh_pg,
    report,
)

pytestmark = pytest.mark.slow
__all__ = ["fresh_pg"]

RECIPIENTS = 1200
ROUNDS = 6


def _terminate_all(admin_url: str, database: str) -> int:
    """Kill every connection to the database but our own; return how many."""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": database},
                ).all()
            )
    finally:
        engine.dispose()


def test_connections_killed_mid_fan_out_and_mid_webhooks(
    fresh_pg: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    csv_path = tmp_path / "dir.csv"
    bulk_directory(csv_path, RECIPIENTS, "p")
    database = fresh_pg.rsplit("/", 1)[1]
    # The fault tests' database lives on the same server; any database is fine to connect from.
    admin_url = fresh_pg.rsplit("/", 1)[0] + "/postgres"
    env = {"RELAY_VISIBILITY_TIMEOUT": "20", "RELAY_CLAIM_LEASE": "8"}
    with Stack(
        fresh_pg, tmp_path, Population(speed=10), sms_rate=150, workers=2, scheduler=True,
        env=env,
    ) as stack:  # fmt: skip
        stack.import_directory(csv_path)
        alert_id = stack.issue(template="drill", mode="blast", channels=("sms",), status="Exercise")
        log = stack.sim.log
        wait_until(lambda: len(log.of_kind("status_callback")) >= 100, 60, "callbacks flowing")
        killed: list[tuple[int, int, int]] = []  # (requests so far, callbacks so far, killed)
        done = threading.Event()

        def killer() -> None:
            for _ in range(ROUNDS):
                n = _terminate_all(admin_url, database)
                killed.append((len(log.sms_requests()), len(log.of_kind("status_callback")), n))
                if done.wait(1.5):
                    return

        thread = threading.Thread(target=killer)
        thread.start()
        thread.join(60)
        assert len(killed) == ROUNDS and sum(k[2] for k in killed) > 0
        stack.wait_final(alert_id, timeout=180)
        counts = accepted_per_recipient(log)
        states = Counter(d.state for d in stack.deliveries(alert_id))
        callbacks = log.of_kind("status_callback")
        failed_callbacks = sum(1 for r in callbacks if r.status == 0 or r.status >= 500)
        with transaction(fresh_pg) as session:
            delivered_events = session.scalar(
                select(func.count())
                .select_from(DeliveryEvent)
                .where(DeliveryEvent.status == "delivered", DeliveryEvent.delivery_id.is_not(None))
            )
        batches_retried = sum("status batch of" in r.getMessage() for r in caplog.records)
        report(
            "postgres connections killed",
            recipients=RECIPIENTS,
            rounds_requests_callbacks_killed=killed,
            callbacks_failed_then_retried=failed_callbacks,
            status_batches_stored_again=batches_retried,
            duplicates=duplicates(counts),
            states=dict(states),
        )
        assert stack.sim.violations == []
        # The kills did hit status ingest mid-transaction: batches the relay stored again
        # event by event (6 a run measured), or callbacks answered 500 that the provider's
        # retries then stored; the delivered states below rest on those.
        assert failed_callbacks + batches_retried > 0
        assert len(counts) == RECIPIENTS  # nobody missed
        # Every message was delivered and the relay knows it: no callback was lost.
        assert states == {"delivered": RECIPIENTS}
        assert delivered_events and delivered_events >= RECIPIENTS
        # Duplicates only for sends whose result could not be written when the connection died.
        assert duplicates(counts) <= 2 * 100 * ROUNDS
