"""``datumio COMMAND ...``: one entry point for every datumio tool."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from datumio._version import __version__
from datumio.tools import demo, ingest_cmd, inspect_cmd, preview_cmd, verify_cmd

#: name -> (summary, main(argv) -> exit status)
COMMANDS: dict[str, tuple[str, Callable[[Sequence[str] | None], int]]] = {
    "demo": ("draw a small long-tailed image set, ingest it and summarise it", demo.main),
    "ingest": (
        "pack a folder of images into LMDB/HDF5 shards (same as datumio-ingest)",
        lambda argv: ingest_cmd.run(ingest_cmd.build_parser("datumio ingest").parse_args(argv)),
    ),
    "inspect": (
        "summarise a dataset: classes, sizes, duplicates, sampling, pictures",
        lambda argv: inspect_cmd.run(inspect_cmd.build_parser("datumio inspect").parse_args(argv)),
    ),
    "preview": ("grid of stored vs augmented samples per class", preview_cmd.main),
    "verify": ("check every record's CRC32 and that the dataset is whole", verify_cmd.main),
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
  datumio verify out.lmdb
  datumio COMMAND --help
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``datumio``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if args[0] == "--version":
        print(__version__)
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"datumio: unknown command {args[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return command[1](args[1:])


if __name__ == "__main__":
    sys.exit(main())
