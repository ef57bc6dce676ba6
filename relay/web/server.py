"""`relay serve`'s HTTP server: uvicorn, with time limits on reading a request.

uvicorn bounds only the idle time between two requests of a connection. A client that opens a
connection and trickles its headers or body a byte at a time would hold it for as long as it
likes, and a few hundred such clients hold every connection the process can serve while the
ward needs the acknowledgement links most. So each request must arrive in time: its headers
within HEADER_TIMEOUT_S of its first byte (or of the connection, for the first request), the
whole request, body included, within REQUEST_TIMEOUT_S. A request still arriving after that is
answered 408 and its connection closed. The bounds leave room: a 2 MB directory CSV (the
largest body, relay/web/api.py MAX_BODY) needs only ~70 kB/s to arrive in 30 s.

A reverse proxy in front (docker-compose.yml, ops/) should still bound these itself; this is
the floor that holds without one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 30.0
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\n"
    b"content-length: 29\r\n\r\n"
    b"request not received in time\n"
)

log = logging.getLogger(__name__)


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with the header and request deadlines above."""

    header_timeout_s = HEADER_TIMEOUT_S
    request_timeout_s = REQUEST_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_body = False
        self._started = 0.0  # loop time of the request's first byte (or of the connection)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._started = self.loop.time()
        self._arm(self.header_timeout_s)  # a connection that never sends a byte is let go too

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._deadline is None:
            self._in_body, self._started = False, self.loop.time()
            self._arm(self.header_timeout_s)  # the first byte of the next request
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            if not self._in_body:  # headers in: the body gets what remains of the whole bound
                self._in_body = True
                self._arm(self._started + self.request_timeout_s - self.loop.time())
        elif state is not h11.IDLE:
            self._disarm()  # the request is in (DONE), or the connection is ending

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm()  # the next request's clock starts with its first byte

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(max(seconds, 0.0), self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        state = self.conn.their_state
        if self.transport.is_closing() or state not in (h11.IDLE, h11.SEND_BODY):
            return
        partial = state is h11.SEND_BODY or bool(self.conn.trailing_data[0])
        if partial:  # silence on a connection that sent nothing is not worth a log line
            log.warning(
                "closed a connection: its request's %s did not arrive in time",
                "body" if state is h11.SEND_BODY else "headers",
            )
            if state is h11.IDLE or self.cycle is None or not self.cycle.response_started:
                self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()  # an app waiting for the body sees the client disconnect


def run(app: Any, host: str, port: int, trusted_proxies: str = "127.0.0.1") -> None:
    """Serve `app` until told to stop (SIGINT/SIGTERM), with the time limits above. The
    client address is X-Forwarded-For's only from `trusted_proxies` (RELAY_TRUSTED_PROXIES)."""
    # log_config=None: uvicorn keeps its hands off logging; its lines go through ours.
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        http=TimedH11Protocol,
        proxy_headers=True,
        forwarded_allow_ips=trusted_proxies,
    )
