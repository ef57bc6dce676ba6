"""Settings: defaults for the embedded mode, one clear error naming each bad variable."""

from __future__ import annotations

import pytest

from relay.config import ConfigError, load_settings


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
