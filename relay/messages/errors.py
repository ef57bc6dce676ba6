"""The errors of message composition: one type per thing the caller must act on."""

from __future__ import annotations

from collections.abc import Sequence


class MessageError(Exception):
    """Base of the errors below."""


class UnknownTemplateError(MessageError, LookupError):
    """No such event template (or no template for that channel)."""

    def __init__(self, event: str, detail: str = "") -> None:
        self.event = event
        super().__init__(detail or f"unknown template {event!r}")

    def __str__(self) -> str:  # LookupError would repr() the message
        return str(self.args[0])


class TemplateVariableError(MessageError, ValueError):
    """Variables missing, unknown or invalid for a template. `variables` names them all, so
    an operator fixes every problem in one go."""

    def __init__(self, event: str, problems: Sequence[tuple[str, str]]) -> None:
        self.event = event
        self.problems = tuple(problems)
        self.variables = tuple(name for name, _ in self.problems)
        detail = "; ".join(f"{name!r}: {why}" for name, why in self.problems)
        super().__init__(f"template {event!r}: {detail}")


class SegmentBudgetError(MessageError, ValueError):
    """A rendered SMS is longer than its template's segment budget."""

    def __init__(self, event: str, language: str, segments: int, budget: int, units: int) -> None:
        self.event = event
        self.language = language
        self.segments = segments
        self.budget = budget
        super().__init__(
            f"template {event!r} ({language}) SMS is {segments} segments "
            f"({units} characters), over its budget of {budget}"
        )


class CatalogError(MessageError, ValueError):
    """The template catalog (built-in or an operator's) is malformed; raised when loading."""


class TemplateRenderError(MessageError, RuntimeError):
    """A template failed to render (syntax error, or a sandboxed operator template touching
    what it may not). Names the template file."""

    def __init__(self, template: str, detail: str) -> None:
        self.template = template
        super().__init__(f"template {template}: {detail}")
