"""The examples run end to end (fewer epochs than their default, to keep the suite quick).

The examples this run selects start side by side, two at a time, in one module fixture:
each is a child interpreter that imports its framework and draws its pictures.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
from side_by_side import side_by_side

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: The test of each example, and the packages it needs.
TESTS = {
    "train_torch.py": ("test_train_torch", ("torch",)),
    "train_fields_torch.py": ("test_train_fields_torch", ("torch",)),
    "train_keras.py": ("test_train_keras", ("keras", "torch")),
}


def _installed(script: str) -> bool:
    return all(importlib.util.find_spec(name) is not None for name in TESTS[script][1])


def _run(script: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--epochs", "3", "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.fixture(scope="module")
def runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Each selected example whose packages are installed, run in a folder of its own."""
    selected = {item.name for item in request.session.items if item.path == request.path}
    scripts = [s for s, (test, _) in TESTS.items() if test in selected and _installed(s)]
    return side_by_side({s: partial(_run, s, tmp_path_factory.mktemp(s[:-3])) for s in scripts})


def _out(runs: dict[str, subprocess.CompletedProcess[str]], script: str) -> str:
    done = runs[script]
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.skipif(not _installed("train_torch.py"), reason="torch not installed")
def test_train_torch(runs):
    out = _out(runs, "train_torch.py")
    assert "balanced  mean recall" in out and "natural   mean recall" in out
    assert "star" in out


@pytest.mark.skipif(not _installed("train_fields_torch.py"), reason="torch not installed")
def test_train_fields_torch(runs):
    out = _out(runs, "train_fields_torch.py")
    before, after = map(float, re.search(r"mean IoU +untrained (\S+) +trained (\S+)", out).groups())
    assert after > before, out
    assert re.search(r"^  ring +\d+ +\d+ +\d\.\d\d +\d\.\d\d$", out, re.MULTILINE), out
    assert "mean AP" in out and "balance_by='tags'" in out


@pytest.mark.skipif(
    not _installed("train_keras.py"), reason="keras (with the torch backend) not installed"
)
def test_train_keras(runs):
    out = _out(runs, "train_keras.py")
    assert "torch backend" in out and "balanced  mean recall" in out
