"""Fuzzing the API (issue 6): schemathesis generates requests from the app's own OpenAPI and
calls the app in-process (ASGI), with an admin token and with none, valid and invalid data.

Asserted on every response: never a 5xx; the status code, content type, headers and body are
the ones the OpenAPI description declares for that operation. Bounded: a few examples per
operation, so the whole run stays under a minute per database.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api_client import api_client

CHECKS = [
    ignored_auth,  # the declared bearer scheme is enforced: without/with a bad token, no 2xx
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Examples per operation; RELAY_FUZZ_SCALE=10 for a longer hunt (CI keeps it under a minute).
SCALE = int(os.environ.get("RELAY_FUZZ_SCALE", "1"))
EXAMPLES = {GenerationMode.POSITIVE: 8 * SCALE, GenerationMode.NEGATIVE: 5 * SCALE}
# Invalid input is refused with a 4xx: schemathesis' default list lacks 413, the answer to a
# body over the limit.
CHECKS_CONFIG = {"negative_data_rejection": {"expected-statuses": ["4XX"]}}


def config(token: str | None) -> schemathesis.config.SchemathesisConfig:
    """With a token, schemathesis sends it as the declared bearer scheme itself, so a
    negative case that drops the header really goes without it."""
    auth = {"openapi": {"HTTPBearer": {"bearer": token}}} if token else {}
    return schemathesis.config.SchemathesisConfig.from_dict(
        {"checks": CHECKS_CONFIG, **({"auth": auth} if auth else {})}
    )


@schemathesis.serializer("application/cap+xml", "text/csv")
def _as_text(ctx: schemathesis.SerializationContext, value: object) -> bytes:
    """Bodies for the CAP and directory imports: the generated text as it is."""
    return str(value).encode("utf-8", "surrogatepass")


def fuzz(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    seen: list[tuple[str, int]],
) -> None:
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: schemathesis.Case) -> None:
        negative = [negative_data_rejection] if mode is GenerationMode.NEGATIVE else []
        response = case.call_and_validate(checks=CHECKS + negative)
        seen.append((operation.path, response.status_code))

    try:
        call()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # no parameters and no body (e.g. GET /healthz): no invalid request to make


@pytest.mark.parametrize("who", ["admin", "anonymous"])
def test_schemathesis_no_5xx_and_responses_as_documented(db_url: str, who: str) -> None:
    with api_client(db_url) as api:
        token = api.tokens["admin"] if who == "admin" else None
        schema = schemathesis.openapi.from_asgi("/openapi.json", api.app, config=config(token))
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 20  # the whole API, not a schema that failed to load
        seen: list[tuple[str, int]] = []
        for operation in operations:
            for mode in EXAMPLES:
                fuzz(operation, mode, seen)
    api_ok = {path for path, status in seen if path.startswith("/api/") and status < 300}
    if who == "admin":  # the token worked: the fuzzer got past authentication
        assert len(api_ok) >= 5, sorted(seen)
    else:  # nothing under /api/ answers anyone without a token
        assert not api_ok, api_ok


def test_every_json_body_declares_that_unknown_fields_are_refused(db_url: str) -> None:
    # additionalProperties: false in the description is what makes schemathesis' negative mode
    # send bodies with extra fields, and negative_data_rejection then demands a 4xx for them.
    with api_client(db_url) as api:
        spec = api.app.openapi()
    bodies = {
        (method, path): op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if "application/json" in op.get("requestBody", {}).get("content", {})
    }
    assert len(bodies) >= 5, bodies
    schemas = spec["components"]["schemas"]
    open_bodies = {
        key: ref
        for key, ref in bodies.items()
        if schemas[ref.rsplit("/", 1)[-1]].get("additionalProperties") is not False
    }
    assert not open_bodies, open_bodies
