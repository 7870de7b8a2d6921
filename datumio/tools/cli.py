"""``datumio COMMAND ...``: one entry point for every datumio tool.

Each command is also installed as ``datumio-COMMAND`` (:mod:`datumio.tools.entry`). A
command's module is imported only when it runs, so ``datumio --help`` and a mistyped
command answer without loading Pillow, tqdm or the loader.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from datumio._version import __version__

#: ``main(argv, prog) -> exit status`` of one tool.
Tool = Callable[[Sequence[str] | None, str], int]


def _demo(argv: Sequence[str] | None, prog: str) -> int:
    from datumio.tools import demo

    return demo.main(argv, prog)


def _ingest(argv: Sequence[str] | None, prog: str) -> int:
    from datumio.tools import ingest_cmd

    return ingest_cmd.main(argv, prog)


def _inspect(argv: Sequence[str] | None, prog: str) -> int:
    from datumio.tools import inspect_cmd

    return inspect_cmd.main(argv, prog)


def _preview(argv: Sequence[str] | None, prog: str) -> int:
    from datumio.tools import preview_cmd

    return preview_cmd.main(argv, prog)


def _split(argv: Sequence[str] | None, prog: str) -> int:
    from datumio.tools import split_cmd

    return split_cmd.main(argv, prog)


def _verify(argv: Sequence[str] | None, prog: str) -> int:
    from datumio.tools import verify_cmd

    return verify_cmd.main(argv, prog)


#: name -> (summary, main(argv, prog) -> exit status)
COMMANDS: dict[str, tuple[str, Tool]] = {
    "demo": ("draw a small long-tailed image set, ingest it and summarise it", _demo),
    "ingest": ("pack a folder of images into LMDB/HDF5 shards", _ingest),
    "inspect": ("summarise a dataset: classes, sizes, duplicates, sampling, pictures", _inspect),
    "preview": ("grid of stored vs augmented samples per class", _preview),
    "split": ("store train/val/test splits in a dataset (views, no copy)", _split),
    "verify": ("check every record's CRC32 and that the dataset is whole", _verify),
}

USAGE = f"""\
usage: datumio COMMAND [ARGS ...]

datumio {__version__}: sharded image datasets, label-balanced sampling, fast batches.

commands:
{chr(10).join(f"  {name:<10} {summary}" for name, (summary, _) in COMMANDS.items())}

examples:
  datumio demo
  datumio ingest images/ out.lmdb --short-side 256
  datumio inspect out.lmdb --sampling balanced --html report.html
  datumio preview out.lmdb --transform spec.json -o grid.png
  datumio split out.lmdb --val 0.1 --test 0.1
  datumio verify out.lmdb
  datumio COMMAND --help

Every command is also installed as datumio-COMMAND (datumio-ingest, datumio-inspect,
datumio-verify, datumio-preview, datumio-split, datumio-demo), with the same arguments.
"""


def run_command(name: str, argv: Sequence[str] | None, prog: str | None = None) -> int:
    """Run the tool ``name`` with ``argv``; ``prog`` (default ``datumio NAME``) is the name
    its help and messages use."""
    return COMMANDS[name][1](argv, prog or f"datumio {name}")


def unknown_command(name: str) -> str:
    """The message for a command that does not exist, with the close ones."""
    import difflib  # only on this error path

    known = [*COMMANDS, "--help", "--version"] if name.startswith("-") else list(COMMANDS)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if not close:
        close = [c for c in COMMANDS if name and (c.startswith(name) or name.startswith(c))]
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return f"datumio: unknown command {name!r}{hint} (commands: {', '.join(COMMANDS)})"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``datumio``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if args[0] == "--version":
        print(__version__)
        return 0
    if args[0] not in COMMANDS:
        print(f"{unknown_command(args[0])}\n\n{USAGE}", file=sys.stderr)
        return 2
    return run_command(args[0], args[1:])


if __name__ == "__main__":
    sys.exit(main())
