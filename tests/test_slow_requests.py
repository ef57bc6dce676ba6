"""`relay serve` lets go of clients that send a request too slowly (slowloris): headers must
arrive within 10 s, the whole request within 30 s — the defaults, held here as shipped —
while the server keeps answering everyone else."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from relay import migrate
from relay.web.server import HEADER_TIMEOUT_S, REQUEST_TIMEOUT_S
from tests.harness import free_port, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """`relay serve` in its own process, as production runs it; its port and log file. (On
    SQLite only: reading requests happens before any database is touched.)"""
    database_url = f"sqlite:///{tmp_path / 'relay.db'}"
    migrate.upgrade(database_url)
    relay_env = {"RELAY_DATABASE_URL": database_url, "RELAY_WORKDIR": str(tmp_path / "work")}
    port = free_port()
    log_path = tmp_path / "serve.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "TWILIO_"))}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", "from relay.cli import main; main()", "serve", "--port",
             str(port)],
            env={**clean, **relay_env, "RELAY_LOG_FORMAT": "text"},
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until(lambda: _healthy(port), 30, "relay serve did not start")
        yield port, log_path
    finally:
        process.terminate()
        process.wait(15)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).text == "ok"
    except httpx.HTTPError:
        return False


def _trickle(sock: socket.socket, head: bytes, byte_every_s: float, limit_s: float) -> bytes:
    """Send `head`, then one byte at a time; return what the server sent once it closed."""
    sock.sendall(head)
    sock.settimeout(byte_every_s)
    received = b""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            try:
                sock.sendall(b"a")
            except OSError:  # the server has closed its end
                return received
            continue
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"the server still held the connection after {limit_s:.0f}s")


def test_headers_trickled_get_408_and_the_connection_closed(serve) -> None:
    port, log_path = serve
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.monotonic()
        head = b"GET /healthz HTTP/1.1\r\nHost: relay\r\nX-Slow: "
        answer = _trickle(sock, head, 1.0, HEADER_TIMEOUT_S + 10)
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert HEADER_TIMEOUT_S - 1 <= took <= HEADER_TIMEOUT_S + 5
    assert _healthy(port)  # everyone else is still served
    assert "headers did not arrive in time" in log_path.read_text()


def test_a_body_trickled_gets_408_and_the_server_goes_on(serve) -> None:
    port, log_path = serve
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.monotonic()
        head = (
            b"POST /webhooks/twilio/sms HTTP/1.1\r\nHost: relay\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
            b"From=%2B819099990001&Body="
        )
        answer = _trickle(sock, head, 1.5, REQUEST_TIMEOUT_S + 15)
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert REQUEST_TIMEOUT_S - 1 <= took <= REQUEST_TIMEOUT_S + 5
    assert _healthy(port)
    log = log_path.read_text()
    assert "body did not arrive in time" in log and "Traceback" not in log
    with httpx.Client() as client:  # a request at an ordinary pace is answered as always
        ok = client.post(
            f"http://127.0.0.1:{port}/webhooks/twilio/sms", data={"From": "+819099990001"}
        )
    assert ok.status_code == 403  # unsigned: refused by the signature check, not by time
