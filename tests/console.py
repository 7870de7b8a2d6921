"""Command lines of datumio's console scripts, run by this interpreter from the tree under test.

``datumio ...`` and ``datumio-COMMAND ...`` on a test's command line would run whichever
script ``PATH`` finds first (another environment's, or none); these argv lists run the same
entry points (``setup.cfg``) with ``sys.executable`` instead, whatever ``PATH`` holds.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def console_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` (``["datumio", ...]`` or ``["datumio-ingest", ...]``) for ``subprocess``."""
    name, *rest = argv
    if name == "datumio":
        return [sys.executable, "-m", "datumio", *rest]
    if name.startswith("datumio-"):
        entry = name.replace("-", "_")  # datumio-ingest -> datumio.tools.entry:datumio_ingest
        code = f"import sys; from datumio.tools.entry import {entry}; sys.exit({entry}())"
        return [sys.executable, "-c", code, *rest]
    raise ValueError(f"{name!r} is not a datumio console script")
