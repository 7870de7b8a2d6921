"""Console-script entry points: each tool's ``main`` with a quiet exit on a closed pipe.

One naming scheme: ``datumio COMMAND`` and ``datumio-COMMAND`` run the same tool with the
same arguments, for every command of :data:`datumio.tools.cli.COMMANDS`. The setup.cfg
lines::

    datumio = datumio.tools.entry:datumio
    datumio-demo = datumio.tools.entry:datumio_demo
    datumio-ingest = datumio.tools.entry:datumio_ingest
    datumio-inspect = datumio.tools.entry:datumio_inspect
    datumio-preview = datumio.tools.entry:datumio_preview
    datumio-split = datumio.tools.entry:datumio_split
    datumio-verify = datumio.tools.entry:datumio_verify
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from datumio.tools import cli


def _console(main: Callable[[], int]) -> int:
    try:
        return main()
    except BrokenPipeError:
        # `datumio inspect x | head`: the reader left. Point stdout at /dev/null so the
        # interpreter's final flush does not raise again, as the Python docs advise.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _alias(name: str) -> int:
    """``datumio-NAME``: ``datumio NAME`` under its own name (help and messages say it)."""
    return _console(lambda: cli.run_command(name, None, prog=f"datumio-{name}"))


def datumio() -> int:
    """``datumio``."""
    return _console(cli.main)


def datumio_demo() -> int:
    """``datumio-demo``."""
    return _alias("demo")


def datumio_ingest() -> int:
    """``datumio-ingest``."""
    return _alias("ingest")


def datumio_inspect() -> int:
    """``datumio-inspect``."""
    return _alias("inspect")


def datumio_preview() -> int:
    """``datumio-preview``."""
    return _alias("preview")


def datumio_split() -> int:
    """``datumio-split``."""
    return _alias("split")


def datumio_verify() -> int:
    """``datumio-verify``."""
    return _alias("verify")
