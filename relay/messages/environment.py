"""The Jinja2 environments: one for the shipped templates, a sandboxed one for operators'.

Both are strict (StrictUndefined: a misspelt variable is an error, never an empty string in an
emergency message) and autoescape HTML templates (`*.html.j2`) only — SMS and voice are plain
text, and escaping `&` there would put `&amp;` on a phone screen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PrefixLoader,
    StrictUndefined,
    select_autoescape,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from relay.messages.variables import INTENSITY_EN

# Arithmetic an operator's template may do: enough for any message, far from a gigabyte string
# or a power that computes for hours (which would stall the process rendering it).
_MAX_EXPONENT = 64
_MAX_REPEAT = 10_000


class _OperatorSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with `*` and `**` checked (the compiler then never folds them
    at load time either)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
            raise SecurityError(f"exponent {right!r} is too large")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > _MAX_REPEAT
                ):
                    raise SecurityError("repetition too long")
        return super().call_binop(context, operator, left, right)


def _intensity_en(value: object) -> str:
    return INTENSITY_EN.get(str(value), str(value))


def _options(loader: BaseLoader, auto_reload: bool) -> dict[str, Any]:
    return {
        "loader": loader,
        "undefined": StrictUndefined,
        "autoescape": select_autoescape(
            enabled_extensions=("html.j2", "html"), default_for_string=False, default=False
        ),
        "trim_blocks": True,
        "lstrip_blocks": True,
        "keep_trailing_newline": False,
        "auto_reload": auto_reload,
    }


def _install(env: Environment) -> Environment:
    env.filters["intensity_en"] = _intensity_en
    return env


def builtin_environment(root: Path) -> Environment:
    # Shipped templates change only with a deploy: no stat() per render.
    return _install(Environment(**_options(FileSystemLoader(root), auto_reload=False)))  # noqa: S701 - autoescape is set by select_autoescape


def operator_environment(operator_root: Path, builtin_root: Path) -> Environment:
    """Operators' templates run sandboxed (no `__class__.__mro__` walks, no mutation of the
    values they are given) and may extend or import the shared layouts under `_base/`, but
    see nothing else of the built-in tree."""
    loader = ChoiceLoader(
        [
            FileSystemLoader(operator_root),
            PrefixLoader({"_base": FileSystemLoader(builtin_root / "_base")}),
        ]
    )
    return _install(_OperatorSandbox(**_options(loader, auto_reload=True)))
