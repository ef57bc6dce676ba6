"""The house rules, checked over the import graph (docs/DESIGN.md "Where things live").

Each room of relay/ (a package) says in its docstring what it may import and what it must not;
the foundation (relay's top-level modules) says so in relay/__init__.py. Every import anywhere
in a module counts, at module level or inside a function, so a circle cannot hide in a lazy
import. Outside relay/: channels imports nothing of the project, the simulator nothing of relay
or workers, and only relay's command line imports workers.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RELAY = ROOT / "relay"
PROJECT = ("relay", "channels", "simulator", "workers")
ROOMS = sorted(
    p.name for p in RELAY.iterdir() if (p / "__init__.py").exists() and p.name != "migrations"
)
ALL = {"foundation", *ROOMS, "channels", "simulator", "workers"}


def _module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def _sources(top: str) -> Iterator[tuple[str, Path]]:
    for path in sorted((ROOT / top).rglob("*.py")):
        if "migrations" not in path.parts:
            yield _module_name(path), path


def _imports(path: Path) -> set[str]:
    """The project modules `path` imports (`from relay import x` counts as relay.x)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PROJECT}


def _known(modules: set[str], name: str) -> str | None:
    """The project module `name` is, or None for an attribute such as relay.db.transaction."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def room_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "relay":
        return parts[0]
    if len(parts) > 1 and parts[1] in ROOMS:
        return parts[1]
    return "foundation"


def _rule(doc: str, label: str) -> set[str]:
    match = re.search(rf"^{label}:(.*?)(?:\.\s*$|\n\s*\n)", doc, re.M | re.S)
    assert match, f"no '{label}:' line"
    words = {w.strip() for w in match.group(1).replace("\n", " ").split(",")}
    return {w for w in words if w in ALL}


def rules() -> dict[str, tuple[set[str], set[str]]]:
    """Each room's (may import, must not import), read from its docstring."""
    out = {}
    for room in ["foundation", *ROOMS]:
        init = RELAY / "__init__.py" if room == "foundation" else RELAY / room / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert doc, f"{init.relative_to(ROOT)} has no docstring"
        out[room] = (_rule(doc, "May import"), _rule(doc, "Must not import"))
    return out


def graph() -> dict[str, set[str]]:
    paths = {name: path for top in PROJECT for name, path in _sources(top)}
    modules = set(paths)
    edges: dict[str, set[str]] = {}
    for name, path in paths.items():
        targets = {_known(modules, t) for t in _imports(path)}
        edges[name] = {t for t in targets if t and t != name}
    return edges


def test_every_room_states_all_of_its_rules() -> None:
    for room, (may, must_not) in rules().items():
        assert not may & must_not, f"{room}: both allowed and forbidden: {may & must_not}"
        unstated = ALL - {room} - may - must_not
        assert not unstated, f"{room}'s docstring says nothing of {sorted(unstated)}"


def test_no_module_imports_from_a_room_its_docstring_forbids() -> None:
    table = rules()
    broken = []
    for module, targets in graph().items():
        if not module.startswith("relay"):
            continue
        room = room_of(module)
        may, _ = table[room]
        for target in sorted(targets):
            other = room_of(target)
            if other != room and other not in may:
                broken.append(f"{module} ({room}) imports {target} ({other})")
    assert not broken, "\n".join(broken)


def test_outside_relay_the_arrows_point_one_way() -> None:
    allowed = {
        "channels": {"channels"},
        "simulator": {"simulator", "channels"},
        "workers": {"workers", "relay", "channels"},
    }
    broken = []
    for module, targets in graph().items():
        top = module.split(".")[0]
        if top in allowed:
            broken += [
                f"{module} imports {t}" for t in targets if t.split(".")[0] not in allowed[top]
            ]
        elif top == "relay" and room_of(module) != "cli":
            broken += [f"{module} imports {t}" for t in targets if t.startswith("workers")]
    assert not broken, "\n".join(broken)


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle in the graph, as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_circle_between_modules() -> None:
    # A package's __init__ importing its own modules is how packages work, not a circle.
    edges = {
        m: {t for t in ts if not (m == t.rpartition(".")[0] or t == m.rpartition(".")[0])}
        for m, ts in graph().items()
    }
    cycle = _cycle(edges)
    assert cycle is None, " -> ".join(cycle or [])


def test_no_circle_between_rooms() -> None:
    rooms: dict[str, set[str]] = {}
    for module, targets in graph().items():
        if module.startswith("relay"):
            here = room_of(module)
            rooms.setdefault(here, set()).update(
                room_of(t) for t in targets if t.startswith("relay") and room_of(t) != here
            )
    cycle = _cycle(rooms)
    assert cycle is None, " -> ".join(cycle or [])


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("May import: foundation, channels.\nMust not import: web.", {"foundation", "channels"}),
        ("May import: nothing.\nMust not import: web.", set()),
        ("May import: foundation,\ndelivery.\n\nMore.", {"foundation", "delivery"}),
    ],
)
def test_the_rule_reader_reads_wrapped_and_empty_lists(doc: str, expected: set[str]) -> None:
    assert _rule(doc, "May import") == expected


def test_the_checks_catch_a_forbidden_import_and_a_circle() -> None:
    # The checks themselves must be able to fail: a made-up graph with both faults.
    assert room_of("relay.delivery.sending") == "delivery"
    assert room_of("relay.models") == "foundation"
    may, must_not = rules()["delivery"]
    assert "replies" in must_not and "replies" not in may
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
