"""Checking requests against Twilio's own OpenAPI description of its v2010 API.

openapi-core's request validator re-reads the 1.8 MB spec through `jsonschema_path` on every
request (finding the path among ~200, building a deserializer and a schema validator per body
property): about 5 ms per request, far too slow for a benchmark sending thousands per second.
So each operation is *compiled* once, with openapi-core's own pieces — its OAS 3.0 (write)
schema validator built over the spec's body schema, its casting rules for form fields — into a
plain lookup, and a request then costs one form decode and one jsonschema pass.
`validate_full` still runs openapi-core's whole pipeline; tests check the two agree.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema_path import SchemaPath
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.util import BOOLEAN_FALSE_VALUES, BOOLEAN_TRUE_VALUES
from openapi_core.validation.schemas import oas30_write_schema_validators_factory
from openapi_core.validation.schemas.exceptions import InvalidSchemaValue
from openapi_core.validation.schemas.validators import SchemaValidator
from werkzeug.datastructures import Headers, ImmutableMultiDict

log = logging.getLogger(__name__)

SPEC_ENV = "TWILIO_OPENAPI_SPEC"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC_PATH = PROJECT_ROOT.parent / "shared" / "twilio" / "twilio_api_v2010.json"
# Twilio's spec declares this server; openapi-core matches paths against it, so requests that
# reached the simulator on 127.0.0.1 are validated as if they had reached Twilio.
TWILIO_SERVER = "https://api.twilio.com"
FORM = "application/x-www-form-urlencoded"


def default_spec_path() -> Path:
    """The spec file named by TWILIO_OPENAPI_SPEC, else ../shared/twilio/... from the root."""
    configured = os.environ.get(SPEC_ENV)
    if configured:
        path = Path(configured)
        return path if path.is_absolute() else PROJECT_ROOT / path
    return DEFAULT_SPEC_PATH


@functools.cache
def load_spec(path: Path) -> TwilioSpec | None:
    """The spec at `path`, parsed once per process; None (logged once) when it is absent."""
    if not path.is_file():
        log.warning("Twilio OpenAPI spec not found at %s: requests are not schema-validated", path)
        return None
    with path.open(encoding="utf-8") as stream:
        # json, not openapi-core's file loader: that one goes through YAML, which rejects the
        # spec's escaped surrogate pairs (emoji in examples).
        return TwilioSpec(json.load(stream))


@dataclass(frozen=True)
class _Field:
    """How one form field is decoded before schema validation (openapi-core's casting rules)."""

    type: str | None  # JSON schema type of the value, or of its items when `array`
    array: bool


@dataclass(frozen=True)
class _Param:
    name: str
    location: str
    required: bool
    field: _Field
    validator: SchemaValidator


@dataclass(frozen=True)
class _Operation:
    params: tuple[_Param, ...]
    basic_auth: bool  # the operation's security requirement is HTTP Basic
    body_required: bool
    body_media: frozenset[str]
    body_fields: Mapping[str, _Field]
    body_validator: SchemaValidator | None


class TwilioSpec:
    """Twilio's OpenAPI v2010 description, ready to validate requests."""

    def __init__(self, data: dict[str, Any]) -> None:
        # spec_validator_cls=None: validating the spec document itself takes seconds and the
        # spec is Twilio's published one.
        self.app = OpenAPI.from_dict(data, config=Config(spec_validator_cls=None))
        self._operations: dict[tuple[str, str], _Operation] = {}

    def validate(
        self,
        method: str,
        template: str,
        path_params: Mapping[str, str],
        headers: Mapping[str, str],
        content_type: str,
        form: Any,
    ) -> list[str]:
        """Errors in one request to the operation at path `template` (empty when valid).

        `form` is the decoded body as a multidict (`getall` for repeated keys: Twilio sends list
        parameters such as StatusCallbackEvent as one key per value).
        """
        op = self._operation(method.lower(), template)
        errors: list[str] = []
        for param in op.params:
            source = path_params if param.location == "path" else headers
            if param.name not in source:
                if param.required:
                    errors.append(f"missing required {param.location} parameter {param.name}")
                continue
            errors.extend(
                _check(param.validator, _cast(param.field, param.name, source[param.name]))
            )
        if op.basic_auth and not headers.get("Authorization", "").lower().startswith("basic "):
            errors.append("security: HTTP Basic authorization required")
        if op.body_validator is not None:
            if content_type not in op.body_media:
                errors.append(f"request body: unsupported media type {content_type!r}")
            elif form or op.body_required:
                body: dict[str, Any] = {}
                for name, spec_field in op.body_fields.items():
                    if name in form:
                        values = form.getall(name) if spec_field.array else form[name]
                        try:
                            body[name] = _cast(spec_field, name, values)
                        except ValueError as exc:
                            errors.append(f"request body: {exc}")
                errors.extend(f"request body: {e}" for e in _check(op.body_validator, body))
        return errors

    def validate_full(
        self,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]],
        headers: Mapping[str, str],
        content_type: str,
        body: bytes,
    ) -> list[str]:
        """Errors found by openapi-core's complete request validator (slow: ~5 ms a request)."""
        request = _OpenApiRequest(method, path, query, headers, content_type, body)
        return [_describe(error) for error in self.app.iter_request_errors(request)]

    def _operation(self, method: str, template: str) -> _Operation:
        key = (method, template)
        op = self._operations.get(key)
        if op is None:
            op = self._operations[key] = self._compile(method, template)
        return op

    def _compile(self, method: str, template: str) -> _Operation:
        spec = self.app.spec
        path_item = spec / "paths" / template
        operation = path_item / method
        params: list[_Param] = []
        for holder in (path_item, operation):
            if "parameters" not in holder:
                continue
            for param in holder / "parameters":
                location = (param / "in").read_str()
                if location not in ("path", "header"):
                    continue  # the simulator serves no query or cookie parameters
                schema = param / "schema"
                params.append(
                    _Param(
                        name=(param / "name").read_str(),
                        location=location,
                        required=(param / "required").read_bool(default=False),
                        field=_field(schema),
                        validator=oas30_write_schema_validators_factory.create(spec, schema),
                    )
                )
        body_fields: dict[str, _Field] = {}
        body_validator = None
        body_media: frozenset[str] = frozenset()
        body_required = False
        if "requestBody" in operation:
            request_body = operation / "requestBody"
            body_required = (request_body / "required").read_bool(default=False)
            content = request_body / "content"
            body_media = frozenset(map(str, content.keys()))
            if FORM in content and "schema" in content / FORM:
                schema = content / FORM / "schema"
                if "properties" in schema:
                    for name, prop in (schema / "properties").items():
                        body_fields[str(name)] = _field(prop)
                body_validator = oas30_write_schema_validators_factory.create(spec, schema)
        return _Operation(
            params=tuple(params),
            basic_auth=self._basic_auth(operation),
            body_required=body_required,
            body_media=body_media,
            body_fields=body_fields,
            body_validator=body_validator,
        )

    def _basic_auth(self, operation: SchemaPath) -> bool:
        """Whether the operation's security (its own, else the spec's) is HTTP Basic."""
        spec = self.app.spec
        holder = operation if "security" in operation else spec
        if "security" not in holder:
            return False
        schemes = spec / "components" / "securitySchemes"
        for requirement in holder / "security":
            for name in map(str, requirement.keys()):
                scheme = schemes / name
                kind = (scheme / "type").read_str()
                if kind == "http" and (scheme / "scheme").read_str("").lower() == "basic":
                    return True
        return False


def _field(schema: SchemaPath) -> _Field:
    kind = (schema / "type").read_str(None)
    if kind == "array":
        items = schema / "items" if "items" in schema else None
        return _Field(type=(items / "type").read_str(None) if items else None, array=True)
    return _Field(type=kind, array=False)


def _cast(spec_field: _Field, name: str, value: Any) -> Any:
    """Form strings to the schema's types, as openapi-core's casters do."""
    if spec_field.array:
        return [_cast_one(spec_field.type, name, v) for v in value]
    return _cast_one(spec_field.type, name, value)


def _cast_one(kind: str | None, name: str, value: str) -> Any:
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not of type {kind}") from None
    if kind == "boolean":
        lowered = value.lower()
        if lowered in BOOLEAN_TRUE_VALUES:
            return True
        if lowered in BOOLEAN_FALSE_VALUES:
            return False
        raise ValueError(f"{name}: {value!r} is not of type boolean")
    return value


def _check(validator: SchemaValidator, value: Any) -> list[str]:
    try:
        validator.validate(value)
    except InvalidSchemaValue as exc:
        return [_message(error) for error in exc.schema_errors]
    return []


def _message(error: Exception) -> str:
    # jsonschema's ValidationError carries a one-line `message`; str() adds the whole schema.
    return str(getattr(error, "message", error))


def _describe(error: Exception) -> str:
    cause = error.__cause__
    if isinstance(cause, InvalidSchemaValue):
        details = "; ".join(_message(e) for e in cause.schema_errors)
        return f"{type(error).__name__}: {details}"
    if cause is not None:
        return f"{type(error).__name__}: {cause}"
    return f"{type(error).__name__}: {error}"


class _OpenApiRequest:
    """A received request as openapi-core's Request protocol, re-hosted on api.twilio.com."""

    def __init__(
        self,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]],
        headers: Mapping[str, str],
        content_type: str,
        body: bytes,
    ) -> None:
        self.host_url = TWILIO_SERVER
        self.path = path
        self.method = method.lower()
        self.content_type = content_type
        self.body = body or None
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(query)),
            header=Headers(dict(headers)),
            cookie=ImmutableMultiDict(),
        )
