"""The examples run end to end (fewer epochs than their default, to keep the suite quick)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(script: str, tmp_path: Path) -> str:
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--epochs", "3", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_train_torch(tmp_path):
    out = _run("train_torch.py", tmp_path)
    assert "balanced  mean recall" in out and "natural   mean recall" in out
    assert "star" in out


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_train_fields_torch(tmp_path):
    out = _run("train_fields_torch.py", tmp_path)
    before, after = map(float, re.search(r"mean IoU +untrained (\S+) +trained (\S+)", out).groups())
    assert after > before, out
    assert re.search(r"^  ring +\d+ +\d+ +\d\.\d\d +\d\.\d\d$", out, re.MULTILINE), out
    assert "mean AP" in out and "balance_by='tags'" in out


@pytest.mark.skipif(
    importlib.util.find_spec("keras") is None or importlib.util.find_spec("torch") is None,
    reason="keras (with the torch backend) not installed",
)
def test_train_keras(tmp_path):
    out = _run("train_keras.py", tmp_path)
    assert "torch backend" in out and "balanced  mean recall" in out
