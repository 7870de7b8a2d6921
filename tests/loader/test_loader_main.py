"""Loaders started from a main that is not a file (``python -``, ``python -c``) still work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import datumio
spec = datumio.Transform(size=(16, 16), dtype="uint8", layout="HWC")
with datumio.Loader({path!r}, 4, workers=2, start_method={method!r}, transform=spec) as loader:
    print(sum(len(labels) for _, labels in loader))
"""


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
@pytest.mark.parametrize("how", ["stdin", "-c"])
def test_main_from_stdin_or_c(small_lmdb: Path, method: str, how: str) -> None:
    code = SCRIPT.format(path=str(small_lmdb), method=method)
    if how == "stdin":
        result = subprocess.run(
            [sys.executable, "-"], input=code, capture_output=True, text=True, timeout=120
        )
    else:
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) > 0
    assert "died" not in result.stderr
