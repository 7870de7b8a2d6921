"""Mutation harness: do the tests notice when a documented guarantee breaks?

Each mutant of ``mutation/catalog.py`` is one small edit of ``datumio/`` (an exact
``old`` -> ``new`` text replacement; ``old`` must occur exactly once, so a mutant whose code
moved is reported as an error, never silently skipped) plus the tests that should fail
because of it. For each mutant the harness copies the repository's files (tracked, and
untracked ones git does not ignore) into a temporary directory, applies the edit there and
runs ``python -m pytest`` on the mutant's tests with that copy first on ``PYTHONPATH`` (the
copy's ``datumio`` is imported, not the installed one: checked on every copy). A failing
test run kills the mutant; a passing one means it survived. First, the unmutated copy must
pass the union of the selected tests (else a "killed" would mean nothing).

Run on demand, not in CI::

    python mutation/mutants.py              # every mutant, one at a time
    python mutation/mutants.py -j 2 --json  # two at a time, one JSON object on stdout
    python mutation/mutants.py --only loader-strict-ignored --only sampler-seed-ignored
    python mutation/mutants.py --list       # names, files and tests, nothing run
    python -m mutation --list               # the same, from the repository's root

Exit status: 0 every mutant killed, 1 a mutant survived or could not run, 2 bad usage,
3 the unmutated copy fails its tests.

Before each test run the harness waits while the quiet flag file exists (benchmarks ask for a
quiet machine with it) and holds a shared ``flock`` on the benchmark lock file while pytest
runs, so it never runs beside a benchmark that holds the lock exclusively.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__:  # python -m mutation
    from mutation.catalog import MUTANTS, Mutant
else:  # python mutation/mutants.py: this folder is first on sys.path
    from catalog import MUTANTS, Mutant

REPO = Path(__file__).resolve().parents[1]
#: Held shared while tests run; benchmarks hold it exclusively.
LOCK_FILE = Path("/tmp/datumio-bench.lock")
#: While this file exists, no test run starts.
QUIET_FILE = LOCK_FILE.with_name("datumio-quiet")
QUIET_POLL_S = 5.0
#: Longest run of one mutant's tests (a hang is a kill; pytest-timeout usually ends it first).
DEFAULT_TIMEOUT_S = 900
_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


@dataclass
class Outcome:
    """What happened to one mutant."""

    name: str
    status: str  # "killed", "survived" or "error"
    seconds: float  # the tests' run (not the copy, nor the wait for the machine)
    killed_by: str = ""  # the first failing test, or "timeout" / "pytest exit N"
    detail: str = ""


# -- the copy ------------------------------------------------------------------------------


def repository_files(repo: Path) -> list[str]:
    """Tracked files, and untracked ones git does not ignore (new tests count too)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    return sorted({os.fsdecode(n) for n in listed if n and (repo / os.fsdecode(n)).is_file()})


def snapshot(repo: Path, dest: Path) -> None:
    """Copy the repository's files into ``dest`` (one consistent view for the whole run)."""
    for rel in repository_files(repo):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, target)


def problem_of(mutant: Mutant, root: Path) -> str:
    """Why ``mutant`` cannot run on the files at ``root`` (its text or a test is not there;
    "" when it can)."""
    path = root / mutant.path
    if not path.is_file():
        return f"{mutant.path} does not exist"
    found = path.read_text(encoding="utf-8").count(mutant.old)
    if found != 1:
        return f"old text found {found} times in {mutant.path}, expected once"
    for test in mutant.tests:
        file, _, name = test.partition("::")
        if not (root / file).exists():
            return f"test file {file} does not exist"
        function = name.split("::")[-1].split("[")[0]
        if name and f"def {function}(" not in (root / file).read_text(encoding="utf-8"):
            return f"test {test} does not exist"
    return ""


def apply(mutant: Mutant, root: Path) -> None:
    path = root / mutant.path
    path.write_text(
        path.read_text(encoding="utf-8").replace(mutant.old, mutant.new), encoding="utf-8"
    )


# -- running tests -------------------------------------------------------------------------


@contextlib.contextmanager
def machine_turn() -> Iterator[None]:
    """Wait for a quiet machine, then hold the shared benchmark lock."""
    while QUIET_FILE.exists():
        time.sleep(QUIET_POLL_S)
    with open(LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def copy_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def check_import(root: Path) -> str:
    """Empty when ``python`` run in ``root`` imports datumio from ``root``, else the problem."""
    out = subprocess.run(
        [sys.executable, "-c", "import datumio; print(datumio.__file__)"],
        cwd=root,
        env=copy_env(root),
        capture_output=True,
        text=True,
        timeout=120,
    )
    where = out.stdout.strip()
    # A mutant that breaks the import itself is fine here: its tests will fail (and the
    # installed package would have imported, so the copy is the one tried).
    if out.returncode == 0 and not Path(where).resolve().is_relative_to(root.resolve()):
        return f"datumio is imported from {where}, not from the copy {root}"
    return ""


def run_tests(root: Path, tests: Sequence[str], timeout_s: float) -> tuple[int, str, float]:
    """pytest's exit status (-1: timeout), output and seconds for ``tests`` in the copy at
    ``root``."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    with machine_turn():
        started = time.monotonic()
        # Its own process group: on a timeout the whole tree (workers included) is killed.
        proc = subprocess.Popen(
            cmd,
            cwd=root,
            env=copy_env(root),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            return -1, out, time.monotonic() - started
    return proc.returncode, out, time.monotonic() - started


def run_mutant(mutant: Mutant, pristine: Path, work: Path, timeout_s: float) -> Outcome:
    outcome = _run_mutant(mutant, pristine, work, timeout_s)
    note = outcome.killed_by or (outcome.detail.splitlines() or [""])[0]
    print(f"{outcome.name}: {outcome.status} ({outcome.seconds:.0f} s) {note}", file=sys.stderr)
    return outcome


def _run_mutant(mutant: Mutant, pristine: Path, work: Path, timeout_s: float) -> Outcome:
    root = work / mutant.name
    shutil.copytree(pristine, root, symlinks=True)
    try:
        apply(mutant, root)
        wrong = check_import(root)
        if wrong:
            return Outcome(mutant.name, "error", 0.0, detail=wrong)
        code, out, seconds = run_tests(root, mutant.tests, timeout_s)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if code == -1:
        return Outcome(mutant.name, "killed", seconds, "timeout", f"no result in {timeout_s} s")
    if code == 0:
        return Outcome(mutant.name, "survived", seconds)
    if code in (1, 2) or code < 0:
        # 1: a test failed; 2: an error while collecting (an import the mutant broke);
        # negative: pytest itself died of a signal (a crash is a detection too).
        failed = _FAILED.findall(out)
        return Outcome(mutant.name, "killed", seconds, failed[0] if failed else f"exit {code}")
    # 3 internal error, 4 usage error (a test id that does not exist), 5 nothing collected.
    tail = "\n".join(out.strip().splitlines()[-5:])
    return Outcome(mutant.name, "error", seconds, detail=f"pytest exit {code}: {tail}")


# -- the run -------------------------------------------------------------------------------


def select(names: Sequence[str]) -> list[Mutant]:
    if not names:
        return list(MUTANTS)
    by_name = {m.name: m for m in MUTANTS}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        print(f"unknown mutant(s): {', '.join(unknown)}; --list shows the names", file=sys.stderr)
        raise SystemExit(2)
    return [by_name[n] for n in names]


def union(mutants: Sequence[Mutant]) -> list[str]:
    """Every selected test once; a node id inside a selected file is left to the file."""
    tests = sorted({t for m in mutants for t in m.tests})
    files = {t for t in tests if "::" not in t}
    return [t for t in tests if t.split("::")[0] not in files or "::" not in t]


def render(outcomes: Sequence[Outcome], baseline_s: float) -> str:
    width = max([len(o.name) for o in outcomes] + [6])
    lines = [f"{'mutant':<{width}}  {'result':<8}  {'s':>5}  killed by / detail"]
    for o in outcomes:
        note = o.killed_by or o.detail.replace("\n", " | ")
        lines.append(f"{o.name:<{width}}  {o.status:<8}  {o.seconds:5.0f}  {note}")
    count = {s: sum(o.status == s for o in outcomes) for s in ("killed", "survived", "error")}
    lines.append(
        f"total {len(outcomes)}: {count['killed']} killed, {count['survived']} survived, "
        f"{count['error']} error(s); baseline {baseline_s:.0f} s"
    )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python mutation/mutants.py",
        description="Apply each mutant of mutation/catalog.py to a copy of the "
        "repository and check that its tests fail.",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run this mutant (repeatable); default: all",
    )
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="mutants at a time (1)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds for one mutant's tests ({DEFAULT_TIMEOUT_S})",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("-j must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Started in the background (``cmd &``), a shell leaves SIGINT ignored, and an ignored
    # signal stays ignored through exec: the tests' own Ctrl-C cases would hang. Ctrl-C
    # means Ctrl-C here and in every test process.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    mutants = select(args.only)
    if args.list:
        for m in mutants:
            print(f"{m.name}\n    {m.path}: {m.guarantee}\n    tests: {' '.join(m.tests)}")
        return 0
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="datumio-mutants-"))
    try:
        pristine = work / "pristine"
        snapshot(REPO, pristine)
        broken = {m.name: problem_of(m, pristine) for m in mutants}
        runnable = [m for m in mutants if not broken[m.name]]
        baseline = {"tests": union(runnable), "status": "passed", "detail": ""}
        wrong = check_import(pristine)
        code, out, baseline_s = (
            (1, wrong, 0.0) if wrong else run_tests(pristine, baseline["tests"], args.timeout)
        )
        failed = sorted(set(_FAILED.findall(out)))
        if code != 0 and failed and not wrong:
            # Once more, the failed tests alone: a test that passes then is flaky (said in
            # the report), not a reason to give up the run.
            code, _, _ = run_tests(pristine, failed, args.timeout)
            if code == 0:
                baseline["status"] = f"passed, flaky: {' '.join(failed)}"
                print(f"flaky in the unmutated copy: {' '.join(failed)}", file=sys.stderr)
        if code != 0:
            baseline["status"] = "failed"
            baseline["detail"] = "\n".join(out.strip().splitlines()[-15:])
            print(f"the unmutated copy fails its tests:\n{baseline['detail']}", file=sys.stderr)
            return 3
        shutil.rmtree(pristine / ".hypothesis", ignore_errors=True)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = {
                m.name: pool.submit(run_mutant, m, pristine, work, args.timeout) for m in runnable
            }
            outcomes = [
                futures[m.name].result()
                if m.name in futures
                else Outcome(m.name, "error", 0.0, detail=broken[m.name])
                for m in mutants
            ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        report = {
            "schema": "datumio.mutants/1",
            "baseline": {**baseline, "seconds": round(baseline_s, 1)},
            "mutants": [asdict(o) | {"seconds": round(o.seconds, 1)} for o in outcomes],
            "total": len(outcomes),
            "killed": sum(o.status == "killed" for o in outcomes),
            "survived": sum(o.status == "survived" for o in outcomes),
            "errors": sum(o.status == "error" for o in outcomes),
            "seconds": round(time.monotonic() - started, 1),
        }
        print(json.dumps(report, indent=1))
    else:
        print(render(outcomes, baseline_s))
    return 0 if all(o.status == "killed" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
