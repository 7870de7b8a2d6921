"""The size of the package's functions, checked from its source: none too branchy or too long.

Cyclomatic complexity is radon's (``radon cc``: one plus every decision, boolean operator
and comprehension condition); grades E and F (above 30) are refused. A function or method
longer than 100 lines (decorators and docstring included) is refused too. CONTRIBUTING.md
says how to run both by hand.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from radon.complexity import cc_visit

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "datumio"
#: The most a block may score: radon's grade D ends here (E is 31-40, F above).
MAX_COMPLEXITY = 30
MAX_LINES = 100


def too_complex(source: str, where: str) -> Iterator[str]:
    """``where:line name (complexity N)`` for each block of ``source`` above the bound."""
    for block in cc_visit(source):  # functions, classes and methods, as ``radon cc`` lists
        if block.complexity > MAX_COMPLEXITY:
            yield f"{where}:{block.lineno} {block.name} (complexity {block.complexity})"


def too_long(source: str, where: str) -> Iterator[str]:
    """``where:line name (N lines)`` for each function of ``source`` over the bound."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lines = (node.end_lineno or node.lineno) - first + 1
            if lines > MAX_LINES:
                yield f"{where}:{node.lineno} {node.name} ({lines} lines)"


def _sources() -> Iterator[tuple[str, str]]:
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        yield path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE_DIR.parent))


def test_no_function_in_datumio_is_above_complexity_30() -> None:
    found = [line for source, where in _sources() for line in too_complex(source, where)]
    assert not found, "split these by what each part decides:\n" + "\n".join(found)


def test_no_function_in_datumio_is_longer_than_100_lines() -> None:
    found = [line for source, where in _sources() for line in too_long(source, where)]
    assert not found, "split these by what each part does:\n" + "\n".join(found)


def _branchy(branches: int) -> str:
    body = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(branches))
    return f"def f(x):\n{body}    return -1\n"


@pytest.mark.parametrize(("branches", "found"), [(29, 0), (30, 1)])
def test_the_complexity_check_sees_a_function_past_the_bound(branches: int, found: int) -> None:
    assert len(list(too_complex(_branchy(branches), "x.py"))) == found


@pytest.mark.parametrize(("lines", "found"), [(98, 0), (99, 1)])
def test_the_length_check_counts_decorators_and_body(lines: int, found: int) -> None:
    body = "".join(f"    y = {i}\n" for i in range(lines))
    source = f"@staticmethod\ndef f():\n{body}"  # decorator + def + body lines
    assert len(list(too_long(source, "x.py"))) == found
