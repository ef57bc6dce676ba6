"""Settings: defaults for the embedded mode, one clear error naming each bad variable."""

from __future__ import annotations

import pytest

from relay.config import ConfigError, load_settings, require_strong_secrets


def test_embedded_defaults() -> None:
    s = load_settings({})
    assert s.database_url == "sqlite:///var/relay.db"
    assert s.embedded_broker and s.redis_url is None
    assert (s.sms_rate, s.voice_rate, s.email_rate) == (10.0, 1.0, 14.0)
    assert s.twilio_api_url is None


def test_postgres_url_uses_psycopg3_and_redis_broker_is_the_limiter() -> None:
    s = load_settings(
        {"RELAY_DATABASE_URL": "postgresql://u@db/relay", "RELAY_BROKER_URL": "redis://r:6379/0"}
    )
    assert s.database_url == "postgresql+psycopg://u@db/relay"
    assert s.redis_url == "redis://r:6379/0"


def test_token_rotation() -> None:
    s = load_settings({"TWILIO_AUTH_TOKEN": "new-token,old-token"})
    assert s.twilio_auth_tokens == ("new-token", "old-token")
    assert s.twilio_auth_token == "new-token"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RELAY_DATABASE_URL", "mysql://x/y"),
        ("RELAY_BROKER_URL", "amqp:/nohost"),
        ("RELAY_PUBLIC_URL", "relay.example.jp"),
        ("RELAY_SECRET_KEY", "short"),
        ("TWILIO_ACCOUNT_SID", "AC123"),
        ("TWILIO_FROM_NUMBER", "090-1234-5678"),
        ("TWILIO_MESSAGING_SERVICE_SID", "MGxyz"),
        ("TWILIO_API_URL", "ftp://x"),
        ("SMTP_PORT", "99999"),
        ("SMTP_STARTTLS", "maybe"),
        ("RELAY_MAIL_FROM", "nobody"),
        ("RELAY_SMS_RATE", "fast"),
        ("RELAY_VOICE_RATE", "0"),
        ("RELAY_EMAIL_RATE", "-3"),
        ("RELAY_SMS_TWO_WAY", "perhaps"),
    ],
)
def test_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name}:"):
        load_settings({name: value})


STRONG_KEY = "k" * 40
STRONG_TOKEN = "0123456789abcdef" * 2
PUBLIC = {"RELAY_PUBLIC_URL": "https://relay.kanazawa.example.jp"}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "RELAY_SECRET_KEY"),  # nothing set: the built-in development values
        ({"RELAY_SECRET_KEY": "change-me-to-a-long-random-string"}, "RELAY_SECRET_KEY"),
        ({"RELAY_SECRET_KEY": "a-secret-of-twenty-four!"}, "RELAY_SECRET_KEY"),  # too short
        ({"RELAY_SECRET_KEY": STRONG_KEY}, "TWILIO_AUTH_TOKEN"),  # "dev-token"
        ({"RELAY_SECRET_KEY": STRONG_KEY, "TWILIO_AUTH_TOKEN": "change-me"}, "TWILIO_AUTH_TOKEN"),
        (
            {"RELAY_SECRET_KEY": STRONG_KEY, "TWILIO_AUTH_TOKEN": f"{STRONG_TOKEN},dev-token"},
            "TWILIO_AUTH_TOKEN",  # a weak token kept for rotation is accepted too: refused
        ),
    ],
)
def test_known_or_short_secrets_are_refused_with_a_public_url(env, named: str) -> None:
    settings = load_settings({**PUBLIC, **env})
    with pytest.raises(ConfigError, match=f"^{named}: ") as refused:
        require_strong_secrets(settings)
    assert "\n" not in str(refused.value)
    assert STRONG_KEY not in str(refused.value)  # the line names the variable, not the value


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://localhost:8080", "http://[::1]:8000"]
)
def test_loopback_runs_on_the_development_secrets(url: str) -> None:
    require_strong_secrets(load_settings({"RELAY_PUBLIC_URL": url}))  # the demo and the tests


def test_real_secrets_pass() -> None:
    env = {**PUBLIC, "RELAY_SECRET_KEY": STRONG_KEY, "TWILIO_AUTH_TOKEN": STRONG_TOKEN}
    require_strong_secrets(load_settings(env))


@pytest.mark.parametrize("command", ["serve", "worker", "scheduler"])
def test_long_running_processes_refuse_to_start_on_default_secrets(command, tmp_path) -> None:
    import httpx

    from tests.harness import free_port, run_relay

    port = free_port()
    args = [command, "--port", str(port)] if command == "serve" else [command]
    env = {**PUBLIC, "RELAY_WORKDIR": str(tmp_path / "var")}
    for named in ("RELAY_SECRET_KEY", "TWILIO_AUTH_TOKEN"):
        refused = run_relay(args, tmp_path, env, timeout=60)  # returns: it did not keep running
        assert refused.returncode == 2
        assert refused.stdout == ""
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1, refused.stderr
        assert lines[0].startswith(f"relay: configuration error: {named}: ")
        env["RELAY_SECRET_KEY"] = STRONG_KEY  # the key fixed, the token is refused next
    assert not (tmp_path / "var").exists()  # refused before opening a database or broker
    if command == "serve":
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
