"""One naming scheme: ``datumio COMMAND`` and ``datumio-COMMAND`` for every command, close
matches for a mistyped command, and help that loads only the tool asked for.

Every run is a fresh process through the console-script functions of
``datumio.tools.entry`` (what the installed scripts call).
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest
from tool_helpers import run_python, run_tool

from datumio.tools import cli

COMMANDS = ("demo", "ingest", "inspect", "preview", "split", "verify")
#: The module each command lives in.
MODULES = {
    "demo": "datumio.tools.demo",
    "ingest": "datumio.tools.ingest_cmd",
    "inspect": "datumio.tools.inspect_cmd",
    "preview": "datumio.tools.preview_cmd",
    "split": "datumio.tools.split_cmd",
    "verify": "datumio.tools.verify_cmd",
}
SETUP_CFG = Path(__file__).resolve().parents[2] / "setup.cfg"


def test_the_command_table_is_the_one_tested() -> None:
    assert tuple(sorted(cli.COMMANDS)) == COMMANDS


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("verfy", "verify"),
        ("inspct", "inspect"),
        ("prevew", "preview"),
        ("ingset", "ingest"),
        ("demmo", "demo"),
        ("splt", "split"),
        ("datumio-verify", "verify"),
        ("--verison", "--version"),
    ],
)
def test_a_mistyped_command_suggests_the_close_one(typo: str, meant: str) -> None:
    done = run_tool("datumio", typo, "some.lmdb")
    assert done.returncode == 2, done.stderr
    first = done.stderr.splitlines()[0]
    assert f"unknown command {typo!r}" in first and f"did you mean {meant}" in first, first
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_an_unrelated_word_lists_the_commands_without_a_guess() -> None:
    done = run_tool("datumio", "frobnicate")
    assert done.returncode == 2
    assert "did you mean" not in done.stderr
    assert "commands: demo, ingest, inspect, preview, split, verify" in done.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_datumio_dash_alias_with_the_same_arguments(command: str) -> None:
    alias = run_tool(f"datumio_{command}", "--help")
    sub = run_tool("datumio", command, "--help")
    assert alias.returncode == 0 and sub.returncode == 0, alias.stderr + sub.stderr
    assert alias.stdout.startswith(f"usage: datumio-{command} ")
    assert sub.stdout.startswith(f"usage: datumio {command} ")
    assert f"datumio {command} and datumio-{command} are the same command" in alias.stdout
    same = [
        text.replace(f"datumio-{command}", "X").replace(f"datumio {command}", "X")
        for text in (alias.stdout, sub.stdout)
    ]
    assert same[0] == same[1]  # one parser, one set of options
    installed = shutil.which(f"datumio-{command}")
    if installed is not None:  # the console script, once setup.cfg lists it and it is installed
        real = subprocess.run([installed, "--help"], capture_output=True, text=True, timeout=60)
        assert real.returncode == 0 and real.stdout == alias.stdout


def test_an_alias_names_itself_in_its_messages(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing" / "grid.png")
    done = run_tool("datumio_preview", "x.lmdb", "--transform", '{"size": 8}', "-o", missing)
    assert done.returncode == 2 and done.stderr.startswith("datumio-preview: "), done.stderr
    done = run_tool("datumio", "preview", "x.lmdb", "--transform", '{"size": 8}', "-o", missing)
    assert done.returncode == 2 and done.stderr.startswith("datumio preview: "), done.stderr


def test_top_level_help_names_every_alias() -> None:
    done = run_tool("datumio", "--help")
    assert done.returncode == 0
    for command in COMMANDS:
        assert f"datumio-{command}" in done.stdout


def test_setup_cfg_installs_every_alias() -> None:
    """The console scripts setup.cfg declares are exactly the entry functions."""
    parser = configparser.ConfigParser()
    parser.read(SETUP_CFG)
    lines = parser["options.entry_points"]["console_scripts"].strip().splitlines()
    scripts = dict(line.replace(" ", "").split("=") for line in lines)
    expected = {"datumio": "datumio.tools.entry:datumio"}
    expected |= {f"datumio-{c}": f"datumio.tools.entry:datumio_{c}" for c in COMMANDS}
    assert scripts == expected


def _modules_after(argv: list[str]) -> set[str]:
    code = (
        "import contextlib, io, sys\n"
        "from datumio.tools import cli\n"
        "quiet = io.StringIO()\n"
        "with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):\n"
        "    try:\n"
        f"        cli.main({argv!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_help_loads_that_tool_only(command: str) -> None:
    loaded = _modules_after([command, "--help"])
    assert {m for m in MODULES.values() if m in loaded} == {MODULES[command]}


@pytest.mark.parametrize("argv", [["--help"], ["verfy"]])
def test_top_level_help_and_typos_load_no_tool(argv: list[str]) -> None:
    loaded = _modules_after(argv)
    assert not {m for m in MODULES.values() if m in loaded}
    assert "tqdm" not in loaded


def test_import_datumio_loads_no_tool_and_no_difflib() -> None:
    done = run_python("import sys, datumio; print(' '.join(sorted(sys.modules)))")
    loaded = set(done.stdout.split())
    assert not any(m.startswith("datumio.tools") for m in loaded)
    assert "difflib" not in loaded  # the close-name search loads only on its error path
