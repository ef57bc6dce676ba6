"""Message templates and composition (SPEC 4.1, 4.3; ARCHITECTURE 5).

The module-level functions use one default Composer built on first use from the shipped
templates (`<repo>/templates/messages`, or `$RELAY_TEMPLATES_DIR/messages`) plus, when
`$RELAY_OPERATOR_TEMPLATES` names a folder, the operator's templates there. `configure()`
replaces it (tests, or a settings object that knows the folders).

This package imports nothing else from `relay`.

May import: nothing.
Must not import: foundation, questions, accounts, directory, delivery, replies, alerts, drills, cap,
reports, web, cli, channels, simulator, workers, jma.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from relay.messages.catalog import LANGUAGES, AnswerOption
from relay.messages.context import (
    CHANNELS,
    MARKERS,
    STATUSES,
    Channel,
    MessageContext,
    RenderedMessage,
    local_time,
    resolve_language,
)
from relay.messages.errors import (
    CatalogError,
    MessageError,
    SegmentBudgetError,
    TemplateRenderError,
    TemplateVariableError,
    UnknownTemplateError,
)
from relay.messages.evacuation import REVISION_DATE, evacuation_label
from relay.messages.fit import PUBLIC_URL_ALLOWANCE, TARGET_SEGMENTS, LengthNote, length_note
from relay.messages.reference import (
    REFERENCE_ALPHABET,
    is_reference_code,
    normalize_reference,
    reference_code,
)
from relay.messages.render import CapInfo, Composer
from relay.messages.segments import sms_encoding, sms_segments, sms_units

__all__ = [
    "CHANNELS",
    "LANGUAGES",
    "MARKERS",
    "PUBLIC_URL_ALLOWANCE",
    "REFERENCE_ALPHABET",
    "REVISION_DATE",
    "STATUSES",
    "TARGET_SEGMENTS",
    "AnswerOption",
    "CapInfo",
    "CatalogError",
    "Channel",
    "Composer",
    "LengthNote",
    "MessageContext",
    "MessageError",
    "RenderedMessage",
    "SegmentBudgetError",
    "TemplateRenderError",
    "TemplateVariableError",
    "UnknownTemplateError",
    "answer_options",
    "cap_info",
    "check_budget",
    "configure",
    "default_composer",
    "evacuation_label",
    "is_reference_code",
    "length_note",
    "list_templates",
    "local_time",
    "normalize_reference",
    "reference_code",
    "render",
    "resolve_language",
    "sample_variables",
    "sms_budget",
    "sms_encoding",
    "sms_segments",
    "sms_units",
    "validate",
]

TEMPLATES_DIR_ENV = "RELAY_TEMPLATES_DIR"
OPERATOR_TEMPLATES_ENV = "RELAY_OPERATOR_TEMPLATES"

_lock = threading.Lock()
_default: Composer | None = None


def configure(templates_dir: Path | None = None, operator_dir: Path | None = None) -> Composer:
    """Build the default composer from these folders (None: the environment, then the repo)."""
    global _default
    env_templates = os.environ.get(TEMPLATES_DIR_ENV)
    env_operator = os.environ.get(OPERATOR_TEMPLATES_ENV)
    composer = Composer(
        templates_dir or (Path(env_templates) if env_templates else None),
        operator_dir or (Path(env_operator) if env_operator else None),
    )
    with _lock:
        _default = composer
    return composer


def default_composer() -> Composer:
    with _lock:
        current = _default
    return current if current is not None else configure()


def render(
    event: str,
    channel: Channel,
    language: str,
    variables: Mapping[str, object],
    context: MessageContext,
    *,
    enforce_budget: bool = False,
) -> RenderedMessage:
    return default_composer().render(
        event, channel, language, variables, context, enforce_budget=enforce_budget
    )


def validate(event: str, variables: Mapping[str, object]) -> None:
    default_composer().validate(event, variables)


def check_budget(event: str, message: RenderedMessage) -> None:
    default_composer().check_budget(event, message)


def sms_budget(event: str, language: str = "ja") -> int:
    return default_composer().sms_budget(event, language)


def answer_options(event: str, language: str) -> list[AnswerOption]:
    return default_composer().answer_options(event, language)


def cap_info(
    event: str, language: str, variables: Mapping[str, object], on: date | None = None
) -> CapInfo:
    return default_composer().cap_info(event, language, variables, on)


def list_templates() -> list[str]:
    return default_composer().list_templates()


def sample_variables(event: str) -> dict[str, object]:
    return default_composer().sample_variables(event)
