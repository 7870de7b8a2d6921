"""The mutation harness (``mutation/``, CONTRIBUTING.md) starts both documented ways, and
every mutant of its catalog still applies to the code as it is: its ``old`` text occurs
exactly once in its file and its tests exist. A refactor that moves a mutated snippet
fails here, in seconds, instead of in the harness's next run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CATALOG = REPO / "mutation" / "catalog.py"


def _python(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("entry", [("mutation/mutants.py",), ("-m", "mutation")])
def test_the_harness_lists_every_mutant_of_the_catalog(entry: tuple[str, ...]) -> None:
    listed = _python(*entry, "--list")
    assert listed.returncode == 0, listed.stderr
    names = [line for line in listed.stdout.splitlines() if line and not line[0].isspace()]
    assert len(names) == len(set(names)) == CATALOG.read_text(encoding="utf-8").count("Mutant(\n")


def test_every_mutant_applies_to_the_code_as_it_is() -> None:
    script = (
        "from mutation.mutants import MUTANTS, REPO, problem_of\n"
        "for m in MUTANTS:\n"
        "    problem = problem_of(m, REPO)\n"
        "    if problem:\n"
        "        print(f'{m.name}: {problem}')\n"
    )
    checked = _python("-c", script)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == "", "update these entries of mutation/catalog.py:\n" + checked.stdout
