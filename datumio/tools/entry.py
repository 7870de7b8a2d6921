"""Console-script entry points: each tool's ``main`` with a quiet exit on a closed pipe."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from datumio.tools import cli, ingest_cmd, inspect_cmd

Main = Callable[[Sequence[str] | None], int]


def _console(main: Main) -> int:
    try:
        return main(None)
    except BrokenPipeError:
        # `datumio inspect x | head`: the reader left. Point stdout at /dev/null so the
        # interpreter's final flush does not raise again, as the Python docs advise.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def datumio() -> int:
    """``datumio``."""
    return _console(cli.main)


def datumio_ingest() -> int:
    """``datumio-ingest``."""
    return _console(ingest_cmd.main)


def datumio_inspect() -> int:
    """``datumio-inspect``."""
    return _console(inspect_cmd.main)
