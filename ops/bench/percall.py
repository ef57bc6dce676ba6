"""The reference design most paging systems use: one Celery task per message, the synchronous
twilio client, a database commit per message. It lives here, not in relay/, on purpose: it is
what the relay's batched design is measured against (FINDINGS: ~300 msg/s here).

Worker: `celery -A ops.bench.percall worker` with the environment set by ops.bench.run
(BENCH_PERCALL_DB, BENCH_PERCALL_BROKER, TWILIO_*).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from celery import Celery
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

PREFIX = "relay-bench-percall:"
TABLE = """
CREATE TABLE IF NOT EXISTS bench_percall (
    id bigserial PRIMARY KEY, to_number text NOT NULL, body text NOT NULL,
    callback text NOT NULL, state text NOT NULL DEFAULT 'queued', sid text,
    sent_at timestamptz
)"""

app = Celery("percall", broker=os.environ.get("BENCH_PERCALL_BROKER", "redis://127.0.0.1:6379/13"))
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_transport_options={"global_keyprefix": PREFIX, "max_connections": 50},
    worker_hijack_root_logger=False,
)


class RewritingHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """twilio's own synchronous client (requests), pointed at the simulator."""

    def __init__(self, base_url: str) -> None:
        super().__init__(pool_connections=True)
        self._base = urlsplit(base_url)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(url)
        url = urlunsplit((self._base.scheme, self._base.netloc, parts.path, parts.query, ""))
        return super().request(method, url, *args, **kwargs)


@cache
def engine() -> Engine:
    return create_engine(os.environ["BENCH_PERCALL_DB"], pool_size=2)


@cache
def client() -> Client:
    return Client(
        os.environ["TWILIO_ACCOUNT_SID"],
        os.environ["TWILIO_AUTH_TOKEN"],
        http_client=RewritingHttpClient(os.environ["TWILIO_API_URL"]),
    )


@app.task(name="percall.send_one")
def send_one(row_id: int) -> None:
    with engine().connect() as conn:
        to, body, callback = conn.execute(
            text("SELECT to_number, body, callback FROM bench_percall WHERE id = :id"),
            {"id": row_id},
        ).one()
        message = client().messages.create(
            to=to, body=body, from_=os.environ["TWILIO_FROM_NUMBER"], status_callback=callback
        )
        conn.execute(
            text("UPDATE bench_percall SET state='sent', sid=:sid, sent_at=now() WHERE id=:id"),
            {"sid": message.sid, "id": row_id},
        )
        conn.commit()
