"""docker-compose.yml is written and checked here, not run (no Docker engine on this machine)."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from jsonschema import Draft7Validator

from tests.conftest import ROOT, SHARED

SCHEMA = SHARED / "schemas" / "compose-spec.json"


def test_compose_file_conforms_to_the_compose_spec() -> None:
    if not SCHEMA.exists():
        pytest.skip(f"Compose schema not found at {SCHEMA} (set RELAY_SHARED_DIR)")
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    errors = list(Draft7Validator(json.loads(SCHEMA.read_text())).iter_errors(document))
    assert errors == [], [e.message for e in errors]


def test_compose_has_the_production_shape() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    assert {"db", "redis", "migrate", "api", "worker", "scheduler"} <= set(services)
    for role in ("api", "worker", "scheduler"):
        env = services[role]["environment"]
        assert env["RELAY_DATABASE_URL"].startswith("postgresql://")
        assert env["RELAY_BROKER_URL"].startswith("redis://")
    assert (ROOT / services["api"]["build"]["dockerfile"]).exists()


def test_every_service_command_is_a_real_relay_subcommand() -> None:
    from typer.main import get_command

    from relay.cli import app

    cli = get_command(app)
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    checked = 0
    for name, service in services.items():
        command = service.get("command")
        if not command or command[0] != "relay":
            continue
        group = cli
        for word in command[1:]:
            if word.startswith("-"):
                break
            sub = group.get_command(None, word)  # type: ignore[attr-defined]
            assert sub is not None, f"{name}: relay has no command {word!r}"
            group = sub
        checked += 1
    assert checked >= 4


def test_prometheus_rules_use_series_the_relay_exports() -> None:
    import re

    rules = yaml.safe_load(
        (ROOT / "ops" / "prometheus" / "relay-rules.yml").read_text(encoding="utf-8")
    )
    exported = set(
        re.findall(
            r'_family\(\s*"(relay_\w+)"', (ROOT / "relay" / "web" / "metrics.py").read_text()
        )
    )
    for rule in rules["groups"][0]["rules"]:
        used = set(re.findall(r"relay_\w+", rule["expr"]))
        assert used and used <= exported, (rule["alert"], used - exported)


def test_the_app_is_published_only_through_the_proxy_with_slow_client_limits() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    assert "ports" not in services["api"]  # nobody reaches uvicorn but the proxy
    assert "443:443" in services["proxy"]["ports"]
    mounted = services["proxy"]["volumes"][0].split(":")[0]
    conf = (ROOT / mounted).read_text(encoding="utf-8")
    for directive in ("client_header_timeout", "client_body_timeout", "client_max_body_size"):
        assert re.search(rf"^\s*{directive}\s+\w+;", conf, re.M), directive
    assert "proxy_pass http://relay;" in conf and "server api:8000;" in conf
