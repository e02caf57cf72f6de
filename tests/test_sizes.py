"""Files stay readable (STYLE.md): no module over 500 lines, and no function over 60 lines
unless a comment at its top says why ("# Long because …")."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "postroom"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
REASON = "# Long because"


def _modules() -> list[Path]:
    return [path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts]


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE)): count
        for path in _modules()
        if (count := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_a_function_over_60_lines_says_why() -> None:
    unexplained = []
    for path in _modules():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            # From the signature to a few lines past the docstring (or the first statement).
            top = lines[node.lineno - 1 : (node.body[0].end_lineno or node.lineno) + 4]
            if length > MAX_FUNCTION_LINES and not any(REASON in line for line in top):
                unexplained.append(
                    f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({length})"
                )
    assert not unexplained, (
        f"functions over {MAX_FUNCTION_LINES} lines without a reason: {unexplained}"
    )
