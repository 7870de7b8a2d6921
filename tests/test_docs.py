"""The documentation, tested: every example a reader copies runs as written.

* Every ```python block of README.md and docs/*.md runs as a script in a fresh interpreter
  (two at a time, before the first of their tests), in its own directory that holds the
  names the docs use: ``images/`` and ``datumio-demo/`` (drawn by ``datumio demo``),
  ``out.lmdb`` (the demo's dataset; left out for a block that ingests into it) and
  ``out.h5`` (the same images in HDF5). A block
  preceded by ``<!-- fragment: REASON -->`` cannot run here: it is skipped, and the
  fragments must be exactly those of :data:`FRAGMENTS`. A block preceded by
  ``<!-- continues the block above -->`` runs after the page's previous python block (it
  uses that block's functions). An example that imports a framework (torch, keras,
  tensorflow, jax) is skipped only when the framework is not installed; a CUDA example
  picks the CPU when there is no GPU. The example must exit 0 and unlink its shared memory.
* Every ```console block shows commands (``$ datumio ...``) and their output: the command
  runs on the demo dataset and every shown line must be in its output, in order
  (``...`` stands for lines left out; timings, rates and absolute paths may differ).
* Every datumio command in a console or bash block, or in inline code with arguments,
  parses with the tool's own parser (and, for an ingest, builds its ``IngestOptions``).
* JSON examples parse; docs/format.md's manifest shows the fields a manifest has now.
* Every relative link, file name and quoted section in the markdown points to something
  that exists.
* No tracked text file names a path of the machine the project was built on or speaks of how
  the work was organised.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import functools
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from console import console_argv
from side_by_side import side_by_side

REPO = Path(__file__).resolve().parents[1]

#: Pages whose examples run: the README and the user documentation.
EXAMPLE_PAGES = (
    "README.md",
    *sorted(p.relative_to(REPO).as_posix() for p in REPO.glob("docs/*.md")),
)
#: Pages whose links and file names must resolve.
LINK_PAGES = (*EXAMPLE_PAGES, "ARCHITECTURE.md", "benchmarks/README.md")

#: The python blocks that are not run, per page, with the reason written in the page's
#: ``<!-- fragment: REASON -->`` marker: patterns shown inside a larger program that a test
#: runs whole. Every other example runs here (the CUDA ones on the CPU); anything else that
#: fails fails the test.
FRAGMENTS: dict[str, tuple[str, ...]] = {
    "docs/adapters.md": (
        "the resume pattern inside a training script; examples/resume_torch.py runs it whole",
        "a Keras callback pattern; tests/adapters/resume_keras.py runs it whole",
    ),
    "docs/remote.md": (
        "needs an S3 endpoint and credentials",
        "needs an S3 endpoint and credentials",
    ),
}

#: Seconds one example may take (the whole docs test runs in about a minute on 2 cores).
EXAMPLE_TIMEOUT_S = 90
#: Seconds one documented command may take.
COMMAND_TIMEOUT_S = 60

#: ``datumio`` and its ``datumio-COMMAND`` forms.
TOOL = re.compile(r"datumio(?:-[a-z]+)?")
FRAMEWORKS = ("torch", "keras", "tensorflow", "jax", "torchvision", "albumentations")
#: ``datumio.adapters.X`` needs framework FRAMEWORK_OF_ADAPTER[X].
FRAMEWORK_OF_ADAPTER = {
    "torch": "torch",
    "keras": "keras",
    "tf": "tensorflow",
    "jax": "jax",
    "lightning": "pytorch_lightning",
}

_FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*(fragment|continues)\b:?\s*(.*?)\s*-->$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a markdown page."""

    page: str  # path relative to the repository root
    line: int  # line of the opening fence, from 1
    lang: str
    code: str
    marker: str  # "fragment", "continues" or ""
    reason: str  # the fragment's reason

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def read_blocks(page: str) -> list[Block]:
    """The fenced blocks of ``page``, with the marker comment on the line before each."""
    lines = (REPO / page).read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, lang = opening.groups()
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        marker = _MARKER.match(lines[i - 1].strip()) if i > 0 else None
        blocks.append(
            Block(
                page=page,
                line=i + 1,
                lang=lang.lower(),
                code="\n".join(lines[i + 1 : end]) + "\n",
                marker=marker.group(1) if marker else "",
                reason=marker.group(2) if marker else "",
            )
        )
        i = end + 1
    return blocks


BLOCKS = [block for page in EXAMPLE_PAGES for block in read_blocks(page)]
PYTHON_BLOCKS = [b for b in BLOCKS if b.lang in ("python", "py")]
CONSOLE_BLOCKS = [b for b in BLOCKS if b.lang == "console"]
SHELL_BLOCKS = [b for b in BLOCKS if b.lang in ("console", "bash", "sh", "shell")]


def script_of(block: Block) -> str:
    """The block's code, after the blocks it continues."""
    if block.marker != "continues":
        return block.code
    previous = [b for b in PYTHON_BLOCKS if b.page == block.page and b.line < block.line]
    assert previous, f"{block}: marked as continuing, but no python block comes before it"
    return script_of(previous[-1]) + "\n" + block.code


def optional_packages(code: str) -> set[str]:
    """The optional packages an example needs: the frameworks it imports, directly or
    through a datumio adapter, and Dask's ``distributed`` for a Dask ingest."""
    found = set()
    for match in re.finditer(r"^\s*(?:import|from)\s+([\w.]+)", code, re.MULTILINE):
        parts = match.group(1).split(".")
        if parts[0] in FRAMEWORKS:
            found.add(parts[0])
        elif parts[:2] == ["datumio", "adapters"] and len(parts) > 2:
            found.add(FRAMEWORK_OF_ADAPTER[parts[2]])
    backend = re.search(r"KERAS_BACKEND\"\]\s*=\s*\"(\w+)\"", code)
    if backend:  # Keras runs on that framework
        found.add(backend.group(1))
    if re.search(r"executor=\"dask", code):
        found.add("distributed")
    return found


# -- the data the examples read --------------------------------------------------------------


@dataclass(frozen=True)
class DocsData:
    """Where ``datumio demo`` ran, and what it printed."""

    root: Path  # holds datumio-demo/ (images/, demo.lmdb) and out.h5
    demo_stdout: str

    def place(self, where: Path, *, with_out_lmdb: bool) -> None:
        """Link the names the docs use into ``where``."""
        demo = self.root / "datumio-demo"
        links = {"datumio-demo": demo, "images": demo / "images", "out.h5": self.root / "out.h5"}
        if with_out_lmdb:
            links["out.lmdb"] = demo / "demo.lmdb"
        for name, target in links.items():
            (where / name).symlink_to(target, target_is_directory=True)


def child_env() -> dict[str, str]:
    """The environment of an example: this checkout's datumio first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.pop("KERAS_BACKEND", None)  # an example that wants one sets it
    return env


def run_command(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        console_argv(argv),
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )


@pytest.fixture(scope="session")
def docs_data(tmp_path_factory: pytest.TempPathFactory) -> DocsData:
    """``datumio demo`` (as the README runs it) plus its images ingested into ``out.h5``."""
    root = tmp_path_factory.mktemp("docs-data")
    demo = run_command(["datumio", "demo"], root)
    assert demo.returncode == 0, demo.stderr
    ingest = run_command(
        ["datumio-ingest", "datumio-demo/images", "out.h5", "--quiet", "--workers", "2"], root
    )
    assert ingest.returncode == 0, ingest.stderr
    return DocsData(root=root, demo_stdout=demo.stdout)


# -- python examples -------------------------------------------------------------------------


def _leaked_segments(pid: int) -> list[str]:
    """Shared-memory segments the example's process made and did not unlink."""
    if not os.path.isdir("/dev/shm"):
        return []
    return [name for name in os.listdir("/dev/shm") if name.startswith(f"datumio_{pid}_")]


def skip_reason(block: Block) -> str:
    """Why the example cannot run here ('' when it can)."""
    if block.marker == "fragment":
        return f"fragment: {block.reason}"
    for name in sorted(optional_packages(script_of(block))):
        if importlib.util.find_spec(name) is None:
            return f"{name} is not installed"
    return ""


@dataclass(frozen=True)
class ExampleRun:
    """How an example's interpreter ended: its exit status (None: killed at the timeout),
    its output, and the shared memory it left."""

    returncode: int | None
    output: str
    leaked: list[str]


def run_example(block: Block, docs_data: DocsData, where: Path) -> ExampleRun:
    """The example as a script in a fresh interpreter, in ``where``."""
    script = script_of(block)
    # An example that ingests into out.lmdb must find the name free.
    docs_data.place(where, with_out_lmdb=not re.search(r"\bingest\(", script))
    (where / "example.py").write_text(script, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "example.py"],
        cwd=where,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = proc.communicate(timeout=EXAMPLE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        return ExampleRun(None, output, [])
    deadline = time.monotonic() + 2.0
    while _leaked_segments(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return ExampleRun(proc.returncode, output, _leaked_segments(proc.pid))


@pytest.fixture(scope="module")
def example_runs(
    request: pytest.FixtureRequest, docs_data: DocsData, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, ExampleRun]:
    """Every example of this run's selection that can run here, by block, two at a time
    (each is an interpreter of its own, in a folder of its own; many import a framework)."""
    blocks = [
        item.callspec.params["block"]
        for item in request.session.items
        if item.path == request.path and item.originalname == "test_python_example_runs"
    ]
    runs = {
        str(block): functools.partial(
            run_example, block, docs_data, tmp_path_factory.mktemp("example")
        )
        for block in blocks
        if not skip_reason(block)
    }
    return side_by_side(runs)


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=str)
def test_python_example_runs(block: Block, example_runs: dict[str, ExampleRun]) -> None:
    reason = skip_reason(block)
    if reason:
        pytest.skip(reason)
    run = example_runs[str(block)]
    if run.returncode is None:
        pytest.fail(f"{block}: the example ran over {EXAMPLE_TIMEOUT_S} s\n{run.output[-4000:]}")
    assert run.returncode == 0, (
        f"{block}: the example exits {run.returncode}\n--- code\n{script_of(block)}"
        f"--- output\n{run.output[-6000:]}"
    )
    assert run.leaked == [], f"{block}: shared memory left behind"


def test_fragments_are_the_listed_ones() -> None:
    found: dict[str, list[str]] = {}
    for block in PYTHON_BLOCKS:
        if block.marker == "fragment":
            assert block.reason, f"{block}: a fragment marker needs a reason"
            found.setdefault(block.page, []).append(block.reason)
    assert {page: tuple(reasons) for page, reasons in found.items()} == FRAGMENTS
    for block in BLOCKS:
        if block.marker:
            assert block in PYTHON_BLOCKS, f"{block}: a marker only applies to a python block"


# -- commands and their output ---------------------------------------------------------------

_VOLATILE = (
    (re.compile(r"\b\d[\d,]*(?:\.\d+)? s\b"), "<seconds> s"),
    (re.compile(r"\([\d,]+ files/s\)"), "(<rate> files/s)"),
    (re.compile(r"(?<![\w./-])/[\w.-]+(?:/[\w.-]+)*"), "<absolute path>"),
)


def normalised(line: str) -> str:
    line = line.rstrip()
    for pattern, replacement in _VOLATILE:
        line = pattern.sub(replacement, line)
    return line


def console_runs(block: Block) -> list[tuple[str, list[str]]]:
    """``(command, output lines shown)`` for every ``$ command`` of a console block."""
    runs: list[tuple[str, list[str]]] = []
    for line in block.code.splitlines():
        if line.startswith("$ "):
            runs.append((line[2:].strip(), []))
        else:
            assert runs, f"{block}: output before any '$ command' line"
            runs[-1][1].append(line)
    return runs


def missing_lines(shown: list[str], real: list[str]) -> list[str]:
    """Lines of ``shown`` not found in ``real``: runs of lines between ``...`` must appear
    whole and in order, the first at the start; ``real`` may go on after the last."""
    segments: list[list[str]] = [[]]
    for line in shown:
        if line.strip() == "...":
            segments.append([])
        else:
            segments[-1].append(normalised(line))
    real = [normalised(line) for line in real]
    at = 0
    for k, segment in enumerate(segments):
        if not segment:
            continue
        starts = [at] if k == 0 else range(at, len(real) - len(segment) + 1)
        for start in starts:
            if real[start : start + len(segment)] == segment:
                at = start + len(segment)
                break
        else:
            return segment
    return []


@pytest.mark.parametrize("block", CONSOLE_BLOCKS, ids=str)
def test_console_output_is_current(block: Block, docs_data: DocsData) -> None:
    for command, shown in console_runs(block):
        argv = shlex.split(command)
        assert TOOL.fullmatch(argv[0]), f"{block}: no runner for {command!r}"
        if argv == ["datumio", "demo"]:
            stdout = docs_data.demo_stdout  # the fixture ran exactly this command
        else:
            result = run_command(argv, docs_data.root)
            assert result.returncode == 0, f"{block}: {command}\n{result.stderr}"
            stdout = result.stdout
        missing = missing_lines(shown, stdout.splitlines())
        assert not missing, (
            f"{block}: `{command}` no longer prints these lines:\n"
            + "\n".join(missing)
            + "\n--- it prints (normalised)\n"
            + "\n".join(normalised(line) for line in stdout.splitlines())
        )


def shell_commands(block: Block) -> Iterator[list[str]]:
    """The simple commands of a bash or console block (comments, redirections and
    ``&&``/``|``/``;`` separators removed)."""
    text = block.code
    if block.lang == "console":
        text = "\n".join(line[2:] for line in text.splitlines() if line.startswith("$ "))
    text = text.replace("\\\n", " ")
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.commenters = "#"
        lexer.whitespace_split = True
        command: list[str] = []
        skip_next = False
        for token in lexer:
            if skip_next:
                skip_next = False
            elif token in ("&&", "||", "|", ";", "&"):
                if command:
                    yield command
                command = []
            elif token in (">", ">>", "<", "2>", "2>&1"):
                skip_next = token != "2>&1"
            else:
                command.append(token)
        if command:
            yield command


def _parsers() -> dict[str, Callable[[str], argparse.ArgumentParser]]:
    from datumio.tools import (
        cli,
        demo,
        ingest_cmd,
        inspect_cmd,
        preview_cmd,
        split_cmd,
        verify_cmd,
    )

    parsers = {
        "demo": demo.build_parser,
        "ingest": ingest_cmd.build_parser,
        "inspect": inspect_cmd.build_parser,
        "preview": preview_cmd.build_parser,
        "split": split_cmd.build_parser,
        "verify": verify_cmd.build_parser,
    }
    assert set(parsers) == set(cli.COMMANDS), "a datumio command this test does not know"
    return parsers


def console_scripts() -> set[str]:
    """The commands setup.cfg installs."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg", encoding="utf-8")
    lines = config.get("options.entry_points", "console_scripts", fallback="").splitlines()
    return {line.split("=")[0].strip() for line in lines if "=" in line}


def check_parses(argv: list[str]) -> str:
    """'' when ``argv`` (a datumio command line) parses, else argparse's message."""
    from datumio.errors import DatumioError
    from datumio.tools import ingest_cmd

    if argv[0] not in console_scripts():
        return f"setup.cfg installs no command {argv[0]}"
    parsers = _parsers()
    if argv[0] == "datumio":
        if len(argv) < 2 or argv[1] not in parsers:
            return f"unknown command {argv[1:2]}"
        name, args = argv[1], argv[2:]
    else:
        name, args = argv[0].removeprefix("datumio-"), argv[1:]
        if name not in parsers:
            return f"no datumio command {name}"
    parser = parsers[name](" ".join(argv[:2]) if argv[0] == "datumio" else argv[0])
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            parsed = parser.parse_args(args)
    except SystemExit as exc:
        return "" if exc.code == 0 else errors.getvalue().strip().splitlines()[-1]
    if name == "ingest":
        try:
            ingest_cmd.options_from_args(parsed)
        except DatumioError as exc:
            return str(exc)
    return ""


_INLINE_COMMAND = re.compile(r"`(datumio(?:-[a-z]+)? [^`]+)`")


def documented_commands() -> Iterator[tuple[str, list[str]]]:
    """``(where, argv)`` of every datumio command of the docs: in console and bash blocks,
    and in inline code that gives a command with arguments (not only its name)."""
    for block in SHELL_BLOCKS:
        for argv in shell_commands(block):
            if TOOL.fullmatch(argv[0]):
                yield str(block), argv
    for page in LINK_PAGES:
        for match in _INLINE_COMMAND.finditer(re.sub(r"\s+", " ", prose_of(page))):
            argv = shlex.split(match.group(1))
            if len(argv) > (2 if argv[0] == "datumio" else 1):
                yield page, argv


def test_every_documented_command_parses() -> None:
    commands = list(documented_commands())
    assert len(commands) >= 20, "the docs' commands were not found"
    failures = [
        f"{where}: {shlex.join(argv)}: {message}"
        for where, argv in commands
        if (message := check_parses(argv))
    ]
    assert not failures, "\n".join(failures)


# -- data shown in the docs ------------------------------------------------------------------


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "json"], ids=str)
def test_json_examples_parse(block: Block) -> None:
    json.loads(block.code)


def test_manifest_example_shows_every_field(docs_data: DocsData) -> None:
    """docs/format.md's manifest example has the fields of a manifest written now (but the
    two the page says it leaves out) and every ingest option, in the writer's order."""
    shown = [b for b in BLOCKS if b.page == "docs/format.md" and b.lang == "json"]
    example = json.loads(shown[0].code)
    manifest = docs_data.root / "datumio-demo" / "demo.lmdb" / "manifest.json"
    real = json.loads(manifest.read_text(encoding="utf-8"))
    assert list(example) == [key for key in real if key != "generation"]
    assert list(example["stats"]) == [key for key in real["stats"] if key != "files"]
    assert list(example["ingest"]) == list(real["ingest"])
    assert list(example["ingest"]["options"]) == list(real["ingest"]["options"])


# -- links, file names and sections ----------------------------------------------------------

_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_CODE_PATH = re.compile(r"`((?:docs|tests|datumio|benchmarks|examples)/[^`\s]*)`")
_TOP_DOC = re.compile(r"(?<![\w/.-])([A-Z][A-Z_]+\.md)\b")
_SECTION = re.compile(r"`([\w./-]+\.md)`,\s*\"([^\"]+)\"")


def prose_of(page: str) -> str:
    """The page without its fenced blocks."""
    lines = (REPO / page).read_text(encoding="utf-8").splitlines()
    out, fence = [], ""
    for line in lines:
        opening = _FENCE.match(line)
        if fence:
            fence = "" if line.strip() == fence else fence
        elif opening:
            fence = opening.group(1)
        else:
            out.append(line)
    return "\n".join(out)


def headings(page: Path) -> list[str]:
    return [
        line.lstrip("#").strip()
        for line in prose_of(page.relative_to(REPO).as_posix()).splitlines()
        if re.match(r"^#{1,6} ", line)
    ]


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of the page's headings."""
    seen: dict[str, int] = {}
    out = set()
    for heading in headings(page):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def dead_references(page: str) -> list[str]:
    prose = prose_of(page)
    here = (REPO / page).parent
    dead = []
    for match in _LINK.finditer(prose):
        target = match.group(1)
        if re.match(r"^[a-z][a-z+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (here / path).resolve() if path else REPO / page
        if not file.is_relative_to(REPO):
            dead.append(f"link {target}: leaves the repository")
        elif not file.exists():
            dead.append(f"link {target}: no file {path}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            dead.append(f"link {target}: no heading #{anchor} in {path or page}")
    for match in _CODE_PATH.finditer(prose):
        name = re.sub(r":\w+$", "", match.group(1))  # datumio/x.py:Name
        if not re.search(r"[<>{}*]|NNN", name) and not (REPO / name).exists():
            dead.append(f"file {name} does not exist")
    for match in _TOP_DOC.finditer(prose):
        if not (REPO / match.group(1)).exists():
            dead.append(f"file {match.group(1)} does not exist")
    flat = re.sub(r"\s+", " ", prose)
    for match in _SECTION.finditer(flat):
        file, section = REPO / match.group(1), match.group(2)
        if file.exists() and not any(h.startswith(section) for h in headings(file)):
            dead.append(f"section {section!r} is not a heading of {match.group(1)}")
    return dead


@pytest.mark.parametrize("page", LINK_PAGES)
def test_links_and_file_names_resolve(page: str) -> None:
    dead = dead_references(page)
    assert not dead, f"{page}:\n" + "\n".join(dead)


# -- no traces of the machine or of how the work was organised --------------------------------

#: Absolute paths of the machine the project is built on: the checkout and its neighbours
#: (/work), root's home, and files under /tmp.
_MACHINE_PATH = re.compile(r"(?<![\w.~$-])/(?:work|root|tmp)/[\w.-]+")
#: Under /tmp, but deliberate and the same on every machine.
ALLOWED_PATHS = {
    "/tmp/datumio-bench.lock": "the lock every benchmark run takes (benchmarks/README.md)",
    "/tmp/demo": "an example --out in `datumio demo --help`",
}
_PROCESS_WORDS = re.compile(
    r"\bthis session\b|\bissue\s*#?\s*\d+|\bthe \w+ issue\b|\btargets of the\b[^.\n]*\bissue\b",
    re.IGNORECASE,
)


#: Third-party files kept unaltered (their licences ask it): not the project's words.
VENDORED = ("datumio/_native/libjpeg/",)


def tracked_text_files() -> list[Path]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    files = []
    for name in names:
        path = REPO / os.fsdecode(name)
        if os.fsdecode(name).startswith(VENDORED):
            continue
        if name and path.is_file() and path != Path(__file__).resolve():
            data = path.read_bytes()
            if b"\0" not in data[:8192]:
                files.append(path)
    return files


def test_no_machine_paths_or_process_words() -> None:
    found = []
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            where = f"{path.relative_to(REPO)}:{number}"
            for match in _MACHINE_PATH.finditer(line):
                if match.group(0) not in ALLOWED_PATHS:
                    found.append(f"{where}: path {match.group(0)}")
            for match in _PROCESS_WORDS.finditer(line):
                found.append(f"{where}: {match.group(0)!r}")
    assert not found, "\n".join(found)
