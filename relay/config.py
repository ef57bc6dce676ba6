"""Configuration: one frozen settings object read from the environment (SPEC 5.4).

Every variable is parsed strictly; a missing or malformed one raises `ConfigError` naming the
variable, at start-up of the process that needs it. `.env.example` lists every variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from relay.durations import parse_duration

T = TypeVar("T")

DEFAULT_WORKDIR = Path("var")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise ConfigError(f"{name}: expected a {'/'.join(schemes)} URL, got {value!r}")
    return value.rstrip("/")


def _rate(name: str, value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise ConfigError(f"{name}: expected a number per second, got {value!r}") from None
    if not rate > 0:
        raise ConfigError(f"{name}: must be greater than 0, got {value!r}")
    return rate


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name}: expected true or false, got {value!r}")


def _port(name: str, value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f"{name}: expected a TCP port 1-65535, got {value!r}")
    return int(value)


def _choice(*allowed: str) -> Callable[[str, str], str]:
    def parse(name: str, value: str) -> str:
        for option in allowed:
            if value.strip().lower() == option.lower():
                return option
        raise ConfigError(f"{name}: expected one of {', '.join(allowed)}, got {value!r}")

    return parse


def _duration(name: str, value: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _positive_duration(name: str, value: str) -> timedelta:
    duration = _duration(name, value)
    if duration <= timedelta(0):
        raise ConfigError(f"{name}: must be longer than 0 (e.g. 60s)")
    return duration


_SID = re.compile(r"^AC[0-9a-f]{32}$")
# Secrets anyone can read: the built-in development values and .env.example's placeholders.
# With them a stranger could forge an acknowledgement link or a signed SMS "1".
DEV_SECRET_KEY = "insecure-development-key"  # noqa: S105 - public by design, refused off loopback
DEV_AUTH_TOKEN = "dev-token"  # noqa: S105 - likewise
_KNOWN_SECRETS = frozenset({DEV_SECRET_KEY, DEV_AUTH_TOKEN})
_PLACEHOLDER = "change-me"
STRONG_SECRET_LEN = 32  # a Twilio auth token is 32 hex digits; a key at least as long
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_MG = re.compile(r"^MG[0-9a-f]{32}$")


@dataclass(frozen=True)
class Settings:
    database_url: str
    broker_url: str  # "embedded" or a kombu URL (redis://...)
    redis_url: str | None  # rate limiter and locks; None in the embedded mode
    public_url: str
    secret_key: str
    twilio_account_sid: str
    twilio_auth_tokens: tuple[str, ...]  # first one signs requests; all are accepted (rotation)
    twilio_from_number: str | None
    twilio_messaging_service_sid: str | None
    twilio_api_url: str | None
    twilio_two_way_sms: bool
    smtp_host: str
    smtp_port: int
    smtp_username: str | None
    smtp_password: str | None
    smtp_starttls: bool | None  # None: use STARTTLS when the server offers it
    mail_from: str
    sms_rate: float
    voice_rate: float
    email_rate: float
    claim_lease_s: float  # a claimed send not finished after this long was lost with its worker
    visibility_timeout_s: int  # Redis broker: an unacknowledged task is redelivered after this
    broker_prefix: str  # prefix of every broker key in Redis (several relays on one Redis)
    log_format: str  # "json" (one object per line, for log shippers) or "text" (for people)
    log_level: str
    clock_file: Path | None  # seconds to shift the scheduler's clock by (relay.clock); tests
    # Reverse proxies whose X-Forwarded-For names the client (sign-in throttling is per
    # address): comma-separated addresses, or "*" where only the proxy can reach the app.
    trusted_proxies: str
    workdir: Path
    # JMA bulletins (relay/jma/, issue 17): the Atom feeds polled (empty: off), how often, the
    # oldest bulletin that may still act (None: any age, for drills over old samples), how
    # long an aftershock must be stronger than the last alert to make a new one, and the
    # trigger rules file (None: the default rules for Kanazawa Ward shipped in relay/jma/).
    jma_feeds: tuple[str, ...] = ()
    jma_poll_s: float = 60.0
    jma_max_age: timedelta | None = timedelta(hours=1)
    jma_aftershock_window: timedelta = timedelta(hours=6)
    triggers_path: Path | None = None

    @property
    def twilio_auth_token(self) -> str:
        return self.twilio_auth_tokens[0]

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url == "embedded"

    @property
    def embedded_broker_path(self) -> Path:
        """The SQLite file of the embedded broker (kombu's SQLAlchemy transport)."""
        return self.workdir / "broker.sqlite"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise ConfigError naming the first bad variable."""
    env = os.environ if environ is None else environ

    def get(name: str, default: str | None = None) -> str | None:
        value = env.get(name)
        return default if value is None or value == "" else value

    def parse(name: str, parser: Callable[[str, str], T], default: str) -> T:
        return parser(name, get(name, default) or default)

    workdir = Path(get("RELAY_WORKDIR", str(DEFAULT_WORKDIR)) or DEFAULT_WORKDIR)
    database_url = get("RELAY_DATABASE_URL") or f"sqlite:///{workdir / 'relay.db'}"
    if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", database_url):
        raise ConfigError(
            f"RELAY_DATABASE_URL: expected sqlite:///PATH or postgresql://..., got {database_url!r}"
        )
    if database_url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship and measured (set-based writes are ~6x psycopg2).
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]

    broker_url = get("RELAY_BROKER_URL", "embedded") or "embedded"
    if broker_url not in ("embedded", "memory://"):  # memory: one process only (the demo)
        _url("RELAY_BROKER_URL", broker_url, ("redis", "rediss", "sqla+sqlite"))
    redis_url = get("RELAY_REDIS_URL")
    if redis_url is None and broker_url.startswith("redis"):
        redis_url = broker_url
    if redis_url is not None:
        _url("RELAY_REDIS_URL", redis_url, ("redis", "rediss"))

    public_url = _url(
        "RELAY_PUBLIC_URL",
        get("RELAY_PUBLIC_URL", "http://127.0.0.1:8000") or "",
        ("http", "https"),
    )
    secret_key = get("RELAY_SECRET_KEY", DEV_SECRET_KEY) or ""
    if len(secret_key) < 16:
        raise ConfigError("RELAY_SECRET_KEY: must be at least 16 characters")

    sid = get("TWILIO_ACCOUNT_SID", "AC" + "0" * 32) or ""
    if not _SID.match(sid):
        raise ConfigError("TWILIO_ACCOUNT_SID: expected AC followed by 32 hex digits")
    tokens = tuple(t.strip() for t in (get("TWILIO_AUTH_TOKEN", DEV_AUTH_TOKEN) or "").split(","))
    if not all(tokens):
        raise ConfigError("TWILIO_AUTH_TOKEN: empty token (comma-separated for rotation)")
    from_number = get("TWILIO_FROM_NUMBER")
    service_sid = get("TWILIO_MESSAGING_SERVICE_SID")
    if from_number is None and service_sid is None:
        from_number = "+815000000000"  # a fictional number for development and the demo
    if from_number is not None and not re.match(r"^\+[1-9]\d{6,14}$", from_number):
        raise ConfigError(f"TWILIO_FROM_NUMBER: expected E.164 (+81...), got {from_number!r}")
    if service_sid is not None and not _MG.match(service_sid):
        raise ConfigError("TWILIO_MESSAGING_SERVICE_SID: expected MG followed by 32 hex digits")
    api_url = get("TWILIO_API_URL")
    if api_url is not None:
        api_url = _url("TWILIO_API_URL", api_url, ("http", "https"))

    starttls_raw = get("SMTP_STARTTLS", "auto") or "auto"
    starttls = None if starttls_raw == "auto" else _bool("SMTP_STARTTLS", starttls_raw)
    mail_from = get("RELAY_MAIL_FROM", "金沢区役所 <relay@kanazawa.example.jp>") or ""
    if "@" not in mail_from:
        raise ConfigError(f"RELAY_MAIL_FROM: expected an email address, got {mail_from!r}")

    return Settings(
        database_url=database_url,
        broker_url=broker_url,
        redis_url=redis_url,
        public_url=public_url,
        secret_key=secret_key,
        twilio_account_sid=sid,
        twilio_auth_tokens=tokens,
        twilio_from_number=from_number,
        twilio_messaging_service_sid=service_sid,
        twilio_api_url=api_url,
        twilio_two_way_sms=parse("RELAY_SMS_TWO_WAY", _bool, "true"),
        smtp_host=get("SMTP_HOST", "127.0.0.1") or "",
        smtp_port=parse("SMTP_PORT", _port, "25"),
        smtp_username=get("SMTP_USERNAME"),
        smtp_password=get("SMTP_PASSWORD"),
        smtp_starttls=starttls,
        mail_from=mail_from,
        sms_rate=parse("RELAY_SMS_RATE", _rate, "10"),
        voice_rate=parse("RELAY_VOICE_RATE", _rate, "1"),
        email_rate=parse("RELAY_EMAIL_RATE", _rate, "14"),
        claim_lease_s=parse("RELAY_CLAIM_LEASE", _rate, "60"),
        visibility_timeout_s=int(parse("RELAY_VISIBILITY_TIMEOUT", _rate, "600")),
        broker_prefix=get("RELAY_BROKER_PREFIX", "") or "",
        log_format=parse("RELAY_LOG_FORMAT", _choice("json", "text"), "json"),
        log_level=parse("RELAY_LOG_LEVEL", _choice("DEBUG", "INFO", "WARNING", "ERROR"), "INFO"),
        clock_file=Path(clock) if (clock := get("RELAY_CLOCK_FILE")) else None,
        trusted_proxies=get("RELAY_TRUSTED_PROXIES", "127.0.0.1") or "127.0.0.1",
        workdir=workdir,
        jma_feeds=tuple(
            _url("RELAY_JMA_FEEDS", u.strip(), ("http", "https"))
            for u in (get("RELAY_JMA_FEEDS", "") or "").split(",")
            if u.strip()
        ),
        jma_poll_s=parse("RELAY_JMA_POLL_INTERVAL", _positive_duration, "60s").total_seconds(),
        jma_max_age=parse("RELAY_JMA_MAX_AGE", _duration, "1h") or None,
        jma_aftershock_window=parse("RELAY_JMA_AFTERSHOCK_WINDOW", _duration, "6h"),
        triggers_path=Path(triggers) if (triggers := get("RELAY_TRIGGERS")) else None,
    )


def _weak(secret: str) -> bool:
    return (
        secret in _KNOWN_SECRETS
        or secret.lower().startswith(_PLACEHOLDER)
        or len(secret) < STRONG_SECRET_LEN
    )


def is_loopback(url: str) -> bool:
    """The relay is reached only from this machine (the demo, tests, a first try)."""
    return (urlsplit(url).hostname or "") in _LOOPBACK_HOSTS


def require_strong_secrets(settings: Settings) -> None:
    """For `serve`, `worker` and `scheduler`: refuse a known or short secret unless the public
    URL is loopback. Raise ConfigError naming the first weak variable."""
    if is_loopback(settings.public_url):
        return
    if _weak(settings.secret_key):
        weak = "RELAY_SECRET_KEY"
    elif any(_weak(token) for token in settings.twilio_auth_tokens):
        weak = "TWILIO_AUTH_TOKEN"  # rotation tokens included: each one is accepted
    else:
        return
    raise ConfigError(
        f"{weak}: a built-in, placeholder or short value (under {STRONG_SECRET_LEN} "
        f"characters) with a public RELAY_PUBLIC_URL ({settings.public_url}); anyone could "
        "forge acknowledgements. Set the real one (a key: python3 -c 'import secrets; "
        "print(secrets.token_urlsafe(32))')"
    )
