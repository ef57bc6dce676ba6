"""Process-wide runtime: settings, sessions, channels, rate limiters, one event loop.

Built once per process (a Celery pool process, the web app, the CLI). The channels hold one
HTTP session and SMTP connections each; they live on this process's single event loop, so the
loop is kept for the process's life instead of `asyncio.run` per task.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from channels.email_smtp import SmtpEmail
from channels.twilio_http import RelayTwilioHttpClient
from channels.twilio_sms import TwilioSms
from channels.twilio_voice import TwilioVoice
from relay.config import Settings, load_settings
from relay.db import session_factory
from relay.delivery import outbox
from relay.delivery.ratelimit import WAIT_STATS_KEY, LocalTokenBucket, RateLimiter, RedisTokenBucket
from relay.delivery.sending import Senders

T = TypeVar("T")


def burst_for(rate: float) -> int:
    """Tokens a bucket may hand out at once above the steady rate: a tenth of a second's worth,
    at least 3 (one 3-segment SMS). Any 1-second window then holds at most rate + burst, which
    is what the provider's limit tolerates."""
    return max(3, int(rate * 0.1))


@dataclass
class Runtime:
    settings: Settings
    # One event loop and one set of channels (HTTP session, SMTP pool) per thread: a prefork
    # worker process has one thread; the demo's in-process worker runs several.
    _local: threading.local = field(default_factory=threading.local, repr=False)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.settings.database_url)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is None or loop.is_closed():
            loop = self._local.loop = asyncio.new_event_loop()
        return loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    @property
    def senders(self) -> Senders:
        senders: Senders | None = getattr(self._local, "senders", None)
        if senders is None:
            senders = self._local.senders = self._build_senders()
        return senders

    def _build_senders(self) -> Senders:
        s = self.settings
        http = RelayTwilioHttpClient(s.twilio_api_url)  # one connection pool for SMS and calls
        return Senders(
            sms=TwilioSms(
                account_sid=s.twilio_account_sid,
                auth_token=s.twilio_auth_token,
                from_number=s.twilio_from_number,
                messaging_service_sid=s.twilio_messaging_service_sid,
                http_client=http,
            ),
            voice=TwilioVoice(
                account_sid=s.twilio_account_sid,
                auth_token=s.twilio_auth_token,
                from_number=s.twilio_from_number or "",
                http_client=http,
            ),
            email=SmtpEmail(
                host=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password,
                starttls=s.smtp_starttls,
                mail_from=s.mail_from,
            ),
            limiters=self.limiters,
            public_url=s.public_url,
            claim_lease=timedelta(seconds=s.claim_lease_s),
        )

    @cached_property
    def limiters(self) -> dict[str, RateLimiter]:
        """Shared by every thread of the process (and, through Redis, every process)."""
        s = self.settings
        rates = {"sms": s.sms_rate, "voice": s.voice_rate, "email": s.email_rate}
        sender = s.twilio_messaging_service_sid or s.twilio_from_number or ""
        keys = {
            "sms": f"relay:rl:twilio-sms:{s.twilio_account_sid}:{sender}",
            "voice": f"relay:rl:twilio-voice:{s.twilio_account_sid}:{sender}",
            "email": f"relay:rl:smtp:{s.smtp_host}:{s.smtp_port}",
        }
        if s.redis_url is None:
            return {ch: LocalTokenBucket(rate, burst=burst_for(rate)) for ch, rate in rates.items()}
        import redis

        client = redis.Redis.from_url(s.redis_url)
        return {
            ch: RedisTokenBucket(
                client, keys[ch], rate, burst_for(rate), ch, s.broker_prefix + WAIT_STATS_KEY
            )
            for ch, rate in rates.items()
        }

    def publish_outbox(self, older_than_s: float = 0.0) -> int:
        if _publisher is None:
            raise RuntimeError("no outbox publisher registered in this process")
        return outbox.publish_pending(
            self.sessions, _publisher, older_than=timedelta(seconds=older_than_s)
        )


_runtime: Runtime | None = None
# Registered by the entry point that knows the task queue (workers.tasks); relay itself never
# imports workers.
_publisher: outbox.Publisher | None = None


def get_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime(load_settings())
    return _runtime


def set_publisher(publisher: outbox.Publisher) -> None:
    global _publisher
    _publisher = publisher


def reset_runtime() -> None:
    """Forget the process's runtime (after fork, or in tests that change settings)."""
    global _runtime
    _runtime = None
