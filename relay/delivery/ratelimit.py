"""Token buckets that hold a provider's rate across every worker (Redis) or one process (local).

Semantics, the same for both buckets:
- The bucket holds up to `burst` tokens and refills at `rate_per_s`; it starts full.
- `try_acquire(n)` takes n tokens at once and returns 0.0, or takes nothing and returns the
  seconds after which n tokens will be there (no partial take).
- In any interval of w seconds at most `burst + rate_per_s * w` tokens are granted: `burst` is
  how far above the rate a short window may go (e.g. rate 10/s, burst 2: at most 12 in any
  one-second window, and a long run averages 10/s).
- n > burst can never fit, and waiting for it would wait forever; instead it is granted when
  the bucket is full and leaves a debt (negative tokens) that later callers wait out. The
  long-run rate holds; only that one grant exceeds `burst`. (A 10-segment SMS with burst 5.)
- `penalize(seconds)` pauses the bucket for everyone: nothing is granted until then, and it
  refills from empty afterwards, so a provider's 429 slows all workers at once. Overlapping
  pauses do not add up; the later end wins.
- Redis: one Lua script does the refill-and-take atomically, with Redis's own clock (`TIME`),
  so worker clocks never matter; an idle bucket's key expires once it would be full again.
  If Redis is unreachable the redis-py exception propagates: the caller decides (the broker
  is usually the same Redis, so nothing is being sent then anyway).

This module imports nothing else from `relay`.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

_MICRO = 1_000_000

# KEYS[1] bucket hash {tokens, ts}: `tokens` as of time `ts`; refilling starts at `ts`, which
# is in the future while the bucket is paused. ARGV: rate, burst, n, op ("take" | "pause"),
# pause seconds. Returns microseconds to wait (0 = taken).
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end
local wait = 0
if ARGV[4] == 'pause' then
  ts = math.max(ts, now + tonumber(ARGV[5]))
  tokens = math.min(tokens, 0)
else
  local n = tonumber(ARGV[3])
  local need = math.min(n, burst)
  if ts <= now and tokens >= need - 1e-9 then
    tokens = tokens - n
  else
    wait = (ts - now) + math.max(0, need - tokens) / rate
    return math.max(1, math.ceil(wait * 1000000))
  end
end
-- %.17g: tostring() keeps only 14 digits, i.e. 0.1 ms of a Unix time.
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'ts', string.format('%.17g', ts))
local full_in = (ts - now) + (burst - tokens) / rate
redis.call('PEXPIRE', KEYS[1], math.ceil(full_in * 1000) + 1000)
return 0
"""


# Redis hash where every process adds its waits: fields "<name>:waits" and "<name>:seconds"
# (after the relay's key prefix, so relays sharing a Redis keep their own figures).
WAIT_STATS_KEY = "relay:rl-waits"


class RateLimiter(Protocol):
    """What a send loop needs from a rate limiter."""

    @property
    def rate(self) -> float:
        """Tokens per second."""
        ...

    @property
    def burst(self) -> int:
        """Tokens the bucket holds when full."""
        ...

    def try_acquire(self, n: int = 1) -> float:
        """Take n tokens now (0.0) or take none and return the seconds to wait."""
        ...

    async def acquire(self, n: int = 1) -> None:
        """Wait until n tokens are taken."""
        ...

    def penalize(self, seconds: float) -> None:
        """Pause the bucket for everyone sharing it (the provider said 429)."""
        ...


class _Bucket:
    rate: float
    burst: int

    def __init__(self, rate_per_s: float, burst: int) -> None:
        if not (rate_per_s > 0 and math.isfinite(rate_per_s)):
            raise ValueError(f"rate_per_s must be a positive number, got {rate_per_s!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self.rate, self.burst = float(rate_per_s), int(burst)
        self.waits, self.waited_s = 0, 0.0

    def try_acquire(self, n: int = 1) -> float:
        raise NotImplementedError

    async def acquire(self, n: int = 1) -> None:
        """Sleep the returned wait and retry until the tokens are taken.

        The Redis check is a sub-millisecond round trip made on the loop's thread: cheaper
        than handing it to a thread, and it keeps the bucket saturated without idle gaps.
        """
        waited = 0.0
        while (wait := self.try_acquire(n)) > 0:
            waited += wait
            await asyncio.sleep(wait)
        if waited:
            self.record_wait(waited)

    def record_wait(self, seconds: float) -> None:
        """Count a wait for tokens (for /metrics: time spent held back by the provider's rate)."""
        self.waits += 1
        self.waited_s += seconds

    @staticmethod
    def _check_n(n: int) -> None:
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n!r}")


class RedisTokenBucket(_Bucket):
    """A bucket shared by every process that uses the same Redis key.

    `redis_client` is a synchronous `redis.Redis`. Key per provider and sender, e.g.
    "relay:rate:twilio-sms:MG..." — every worker must use the same rate and burst for a key.
    """

    def __init__(
        self,
        redis_client: Any,
        key: str,
        rate_per_s: float,
        burst: int,
        name: str = "",
        stats_key: str = WAIT_STATS_KEY,
    ) -> None:
        super().__init__(rate_per_s, burst)
        self.key = key
        self.name = name  # the label its waits are counted under (e.g. the channel)
        self.stats_key = stats_key
        self._client = redis_client
        # register_script: EVALSHA with the script loaded once (and again after a flush).
        self._script = redis_client.register_script(_LUA)

    def try_acquire(self, n: int = 1) -> float:
        self._check_n(n)
        micros = self._script(keys=[self.key], args=[repr(self.rate), self.burst, n, "take", 0])
        return int(micros) / _MICRO

    def record_wait(self, seconds: float) -> None:
        super().record_wait(seconds)
        if self.name:  # one round trip per wait, not per token
            pipe = self._client.pipeline(transaction=False)
            pipe.hincrby(self.stats_key, f"{self.name}:waits", 1)
            pipe.hincrbyfloat(self.stats_key, f"{self.name}:seconds", seconds)
            pipe.execute()

    def penalize(self, seconds: float) -> None:
        if seconds > 0:
            self._script(keys=[self.key], args=[repr(self.rate), self.burst, 1, "pause", seconds])


class LocalTokenBucket(_Bucket):
    """The same bucket in one process (the embedded mode without Redis); thread-safe."""

    def __init__(
        self, rate_per_s: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(rate_per_s, burst)
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(self.burst)
        self._ts = clock()

    def _refill(self, now: float) -> None:
        if now > self._ts:
            self._tokens = min(self.burst, self._tokens + (now - self._ts) * self.rate)
            self._ts = now

    def try_acquire(self, n: int = 1) -> float:
        self._check_n(n)
        with self._lock:
            now = self._clock()
            self._refill(now)
            need = min(n, self.burst)
            # 1e-9: a caller who slept exactly the promised wait must not miss by a rounding.
            if self._ts <= now and self._tokens >= need - 1e-9:
                self._tokens -= n
                return 0.0
            wait = (self._ts - now) + max(0.0, need - self._tokens) / self.rate
            return max(wait, 1 / _MICRO)

    def penalize(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            now = self._clock()
            self._refill(now)
            self._ts = max(self._ts, now + seconds)
            self._tokens = min(self._tokens, 0.0)
