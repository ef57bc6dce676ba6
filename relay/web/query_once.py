"""Query parameters that take one value must be given once.

`?district=西柴&district=釜利谷` to a parameter that takes one district is ambiguous: FastAPI
would silently keep the last, and the caller would believe both were used. It is a 422 instead.
"""

from __future__ import annotations

from typing import Any, get_origin

from fastapi import HTTPException, Request
from fastapi.routing import APIRoute

_SEQUENCES = (list, tuple, set, frozenset)
_scalar_names: dict[int, frozenset[str]] = {}


def _scalars(route: APIRoute) -> frozenset[str]:
    """The route's single-valued query parameters, its dependencies' included (cached)."""
    key = id(route)
    if key not in _scalar_names:
        names: set[str] = set()
        stack: list[Any] = [route.dependant]
        while stack:
            dependant = stack.pop()
            for field in dependant.query_params:
                if get_origin(field.field_info.annotation) not in _SEQUENCES:
                    names.add(field.alias)
            stack.extend(dependant.dependencies)
        _scalar_names[key] = frozenset(names)
    return _scalar_names[key]


def query_given_once(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    for name in sorted(_scalars(route)):
        if len(request.query_params.getlist(name)) > 1:
            raise HTTPException(422, f"{name}: give one value, not several")
