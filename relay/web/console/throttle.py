"""Failed sign-ins, counted per (user name, client address) and per client address.

A name is never blocked for everyone: that let anyone lock an operator out in an emergency by
typing five wrong passwords for their name (issue 18). Instead:
- 5 failures for one name from one address within 15 minutes block that pair for the rest of
  the window, without checking the password (guessing from one address costs time, and the
  server no scrypt). The same name from any other address signs in as always.
- 30 failures from one address within 15 minutes, whatever the names, block that address
  (one address cannot spray names or flood the server with scrypt).
A guesser with many addresses gets 5 tries per address per name in 15 minutes.

An "address" is an IPv4 address, or an IPv6 /64: one subscriber holds a whole /64 and can
use 2^64 addresses from it, so counting IPv6 per address would bound nothing.

Nothing is counted per name alone, not even to slow it down: a refusal per name is the lockout
again, a queue per name puts the operator behind the attacker's tries, and a fixed delay does
not slow a guesser who tries in parallel. What holds many addresses back is the per-address
bound and the passwords themselves (at least 10 characters, scrypt; relay/accounts/passwords.py);
every refusal is logged with the name.

The client address is the connection's, or the reverse proxy's X-Forwarded-For when the proxy
is trusted (RELAY_TRUSTED_PROXIES, relay/web/server.py). Kept in the web process's memory (one
per app): several web processes each count on their own, which still bounds guessing; a
restart forgets, which errs on letting staff in.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict, deque

PAIR_LIMIT = 5
ADDRESS_LIMIT = 30
WINDOW_S = 15 * 60
_MAX_KEYS = 10_000  # a flood of made-up names or addresses: forget the oldest


class SignInThrottle:
    def __init__(
        self,
        pair_limit: int = PAIR_LIMIT,
        address_limit: int = ADDRESS_LIMIT,
        window_s: float = WINDOW_S,
    ) -> None:
        self.pair_limit, self.address_limit, self.window_s = pair_limit, address_limit, window_s
        self._failures: OrderedDict[tuple[str, ...], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, ...], now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and now - failures[0] > self.window_s:
            failures.popleft()
        return failures

    def blocked(self, name: str, address: str, now: float | None = None) -> str | None:
        """Why this attempt is refused unchecked ("name" or "address"), or None."""
        at = now or time.monotonic()
        address = network(address)
        with self._lock:
            if len(self._recent(("address", address), at)) >= self.address_limit:
                return "address"
            if len(self._recent(_pair(name, address), at)) >= self.pair_limit:
                return "name"
            return None

    def failed(self, name: str, address: str, now: float | None = None) -> None:
        at = now or time.monotonic()
        address = network(address)
        with self._lock:
            for key in (_pair(name, address), ("address", address)):
                self._recent(key, at).append(at)
                self._failures.move_to_end(key)
            while len(self._failures) > _MAX_KEYS:
                self._failures.popitem(last=False)

    def succeeded(self, name: str, address: str) -> None:
        with self._lock:
            self._failures.pop(_pair(name, network(address)), None)


def network(address: str) -> str:
    """What one client is counted as: an IPv4 address (also when written IPv4-mapped, as a
    dual-stack socket reports it), an IPv6 /64; anything else (no address) as it is."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])  # fe80::1%eth0: the zone is not ours
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _pair(name: str, address: str) -> tuple[str, ...]:
    return ("pair", name.casefold(), address)  # never equal to an ("address", ...) key
