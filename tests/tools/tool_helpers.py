"""Run a tool as a user does: a fresh process, real imports, the real exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_python(code: str, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -c code argv...`` in a fresh process (real imports, real exit status)."""
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def run_tool(entry: str, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the console-script function ``datumio.tools.entry.<entry>`` as its script does."""
    code = f"import sys; from datumio.tools.entry import {entry}; sys.exit({entry}())"
    return run_python(code, *argv, cwd=cwd)
