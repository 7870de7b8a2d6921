"""The typed edges, checked the way a user's editor and type checker see them.

Each file of ``tests/typing/cases/`` is a script written against the public API (it is
type-checked, never run). A line that must draw a diagnostic ends with what it must say:

    datumio.Loader("x", 64, workerz=2)  # E: Unexpected keyword argument "workerz"
    reveal_type(options.decode)  # N: Revealed type is "Literal['worker', 'device']"

``# E: TEXT`` is an error whose message holds TEXT, ``# N: TEXT`` a note; a line may carry
several. mypy runs once over every case file with the repository's ``setup.cfg``, the
``datumio`` beside these tests and a cache of its own under ``.mypy_cache/``. Each case
file then passes when every expected diagnostic is on its line and no other line has an
error. Notes nobody asked for (hints that come with an error) are allowed.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tokenize
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CASES = sorted((Path(__file__).resolve().parent / "cases").glob("*.py"))
#: ``path:line: error: message`` (mypy's default output, no columns).
_DIAGNOSTIC = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): (?P<kind>error|note): (?P<text>.*)$")
#: ``# E: text`` / ``# N: text``, several per line: each runs to the next marker.
_EXPECTED = re.compile(r"#\s*(?P<kind>[EN]):\s*(?P<text>.*?)\s*(?=#\s*[EN]:|$)")
_KINDS = {"E": "error", "N": "note"}

Found = dict[int, list[tuple[str, str]]]  # line -> (kind, text)


def expectations(source: str) -> Found:
    """The diagnostics the comments of ``source`` ask for, by line (comments only: a
    docstring that shows the markers asks for nothing)."""
    wanted: Found = defaultdict(list)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            for match in _EXPECTED.finditer(token.string):
                wanted[token.start[0]].append((_KINDS[match["kind"]], match["text"]))
    return wanted


@pytest.fixture(scope="module")
def diagnostics() -> dict[Path, Found]:
    """mypy's diagnostics on the case files, by file and line (one run for all)."""
    env = dict(os.environ, MYPYPATH=str(ROOT))  # this checkout's datumio, not an install
    command = [
        *(sys.executable, "-m", "mypy", "--config-file", str(ROOT / "setup.cfg")),
        *("--cache-dir", str(ROOT / ".mypy_cache" / "typing-cases")),
        # datumio's own errors are `python -m mypy`'s business; these files' are ours.
        *("--follow-imports", "silent", "--no-error-summary", "--hide-error-context"),
        *("--show-absolute-path", "--no-pretty", "--no-color-output"),
        *map(str, CASES),
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):  # 2: mypy itself failed (bad flag, crash)
        pytest.fail(f"mypy failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    found: dict[Path, Found] = defaultdict(lambda: defaultdict(list))
    for line in done.stdout.splitlines():
        match = _DIAGNOSTIC.match(line)
        if match is None:
            continue
        found[Path(match["path"]).resolve()][int(match["line"])].append(
            (match["kind"], match["text"])
        )
    return found


def mismatches(wanted: Found, got: Found) -> list[str]:
    """What differs between the diagnostics asked for and those mypy gave, one per line."""
    problems = []
    for line, asked in sorted(wanted.items()):
        for kind, text in asked:
            if not any(k == kind and text in t for k, t in got.get(line, [])):
                seen = "; ".join(f"{k}: {t}" for k, t in got.get(line, [])) or "nothing"
                problems.append(f"line {line}: expected {kind} {text!r}, mypy gave {seen}")
    for line, given in sorted(got.items()):
        asked_errors = [text for kind, text in wanted.get(line, []) if kind == "error"]
        for kind, text in given:
            if kind == "error" and not any(a in text for a in asked_errors):
                problems.append(f"line {line}: unexpected error: {text}")
    return problems


def test_there_are_case_files() -> None:
    assert any(path.name == "options.py" for path in CASES), CASES


@pytest.mark.parametrize("case", CASES, ids=[path.stem for path in CASES])
def test_mypy_gives_exactly_the_expected_diagnostics(
    case: Path, diagnostics: dict[Path, Found]
) -> None:
    wanted = expectations(case.read_text(encoding="utf-8"))
    assert any(kind == "error" for asked in wanted.values() for kind, _ in asked), (
        f"{case.name} expects no error: a case file holds wrong calls too"
    )
    problems = mismatches(wanted, diagnostics.get(case, {}))
    assert not problems, f"{case.relative_to(ROOT)}:\n" + "\n".join(problems)


def test_markers_are_read_from_comments_only() -> None:
    source = '"""Mark a line with # E: text."""\nf(x=1)  # E: first  # N: a note\ng()  # fine\n'
    assert expectations(source) == {2: [("error", "first"), ("note", "a note")]}


def test_a_missing_or_an_extra_diagnostic_is_reported() -> None:
    # The comparison itself: a wrong call nobody flagged, and a flag mypy did not raise.
    wanted: Found = {3: [("error", 'Unexpected keyword argument "workerz"')]}
    got: Found = {
        3: [("error", 'Unexpected keyword argument "workerz" for "Loader"')],
        7: [("error", "Argument 1 has incompatible type"), ("note", "a hint")],
    }
    assert mismatches(wanted, got) == ["line 7: unexpected error: Argument 1 has incompatible type"]
    assert mismatches(wanted, {}) == [
        "line 3: expected error 'Unexpected keyword argument \"workerz\"', mypy gave nothing"
    ]
