"""The apps depend on each other one way (docs/architecture.md): no import cycle between apps,
and nothing above imported into `core` (the bottom) or `mail` (SMTP only, no Django models).

Imports under `if TYPE_CHECKING:` are annotations, not dependencies, and are not counted. The
top-level modules (settings, urls, wsgi, asgi, __main__) wire everything and belong to no app.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "postroom"
# What each bottom layer may import, besides itself.
ALLOWED_BELOW = {"core": set(), "mail": {"core"}, "audit": {"core"}, "queue": {"core"}}


def _imports(node: ast.AST) -> Iterator[str]:
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        return  # annotations only
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        yield node.module
    elif isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    for child in ast.iter_child_nodes(node):
        yield from _imports(child)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def app_graph() -> dict[str, set[str]]:
    """app -> the other apps its modules import (postroom.<app>...)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        if len(parts) == 1 or "migrations" in parts:
            continue  # wiring modules; migrations name apps by label, not by import
        app = parts[0]
        targets = graph.setdefault(app, set())
        for module in _imports(ast.parse(path.read_text(), str(path))):
            names = module.split(".")
            is_other_app = names[0] == "postroom" and len(names) > 1 and names[1] != app
            if is_other_app and (PACKAGE / names[1]).is_dir():
                targets.add(names[1])
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path [a, b, ..., a], or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(app: str) -> list[str] | None:
        state[app] = "open"
        stack.append(app)
        for target in sorted(graph.get(app, ())):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[app] = "done"
        return None

    for app in sorted(graph):
        if app not in state and (cycle := visit(app)):
            return cycle
    return None


def test_no_import_cycle_between_apps() -> None:
    cycle = find_cycle(app_graph())
    assert cycle is None, "import cycle between apps: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("app", sorted(ALLOWED_BELOW))
def test_a_bottom_layer_imports_nothing_above_it(app: str) -> None:
    upward = app_graph().get(app, set()) - ALLOWED_BELOW[app]
    assert not upward, f"postroom.{app} imports {sorted(upward)}, which sit above it"


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
