"""``datumio split PATH --val 0.1``: store train/val/test splits in a dataset."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from datumio.errors import DatumioError, OptionError, printable
from datumio.ingest.split import SplitRequest, split_dataset
from datumio.sampling._split import split_names
from datumio.shards.manifest import Manifest, Splits, read_manifest
from datumio.tools.render import json_text, plural

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EXAMPLES = """\
examples:
  datumio split out.lmdb --val 0.1
      90% of each class for train, 10% for val, chosen at random (seed 0)
  datumio split out.lmdb --val 0.1 --test 0.1 --seed 7
  datumio split out.lmdb --val 0.2 --no-by-group
      split record by record although the dataset has groups
  datumio split out.lmdb --val 0.1 --json
      one JSON object: records per split and per class, the largest deviation from a target

Read a split with datumio.open(PATH, split="val") or Loader(PATH, split="train"); no
record is copied. Splitting again replaces the splits at once (readers see the old ones or
the new ones); with groups (a labels file's group column), every group stays in one split.

exit status: 0 done, 1 failed (not a dataset, a URL, another run writing it ...: the
message says what to do), 2 bad usage, 130 interrupted while waiting (nothing changed).

datumio split and datumio-split are the same command.
"""


DESCRIPTION = (
    "Store train/val/test splits in a dataset as views (lists of record ids): each class "
    "split in the given fractions, train taking the rest; with groups, every group in one "
    "split. Replaces the splits the dataset had."
)
_WAIT = (
    "when another run is writing the dataset, wait up to SECONDS (or 'forever'); default: "
    "stop at once, naming that run"
)
#: The keywords of :func:`split_dataset` that are flags of the same name.
_KEYWORDS = ("val", "test", "seed", "by_group", "wait")


def build_parser(prog: str = "datumio split") -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog, description=DESCRIPTION, epilog=EXAMPLES, formatter_class=raw
    )
    parser.add_argument("path", metavar="PATH", help="dataset directory (out.lmdb, out.h5)")
    for name, default in (("val", 0.1), ("test", 0.0)):
        parser.add_argument(
            f"--{name}",
            type=float,
            default=default,
            metavar="F",
            help=f"share of each class for {name} (default {default:g})",
        )
    parser.add_argument("--seed", type=int, default=0, help="chooses the records (default 0)")
    parser.add_argument(
        "--by-group",
        action=argparse.BooleanOptionalAction,
        help="keep every group in one split (default: when the dataset has groups)",
    )
    parser.add_argument("--wait", type=_seconds, default=0.0, metavar="SECONDS", help=_WAIT)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser


def _seconds(text: str) -> float | None:
    """``--wait``: a number of seconds, or ``forever`` (None)."""
    word = text.strip().lower()
    try:
        return None if word == "forever" else float(word)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not seconds or 'forever'") from None


def largest_deviation(manifest: Manifest, splits: Splits) -> dict[str, Any] | None:
    """Where a split's count of a class lies furthest from its target (fraction times the
    class's records): ``split``, ``class``, ``count``, ``target``, ``records`` (the
    distance); None when the splits record no fractions (made another way)."""
    fractions = splits.how.get("fractions")
    if not isinstance(fractions, dict) or not manifest.num_classes:
        return None
    names, shares = split_names(fractions)
    if set(names) != set(splits.names):
        return None
    got = np.asarray([splits.class_counts[name] for name in names], np.float64)
    target = shares[:, None] * np.asarray(manifest.class_counts, np.float64)[None, :]
    s, c = np.unravel_index(int(np.argmax(np.abs(got - target))), got.shape)
    return {
        "split": names[s],
        "class": manifest.class_names[c],
        "count": int(got[s, c]),
        "target": round(float(target[s, c]), 4),
        "records": round(abs(float(got[s, c] - target[s, c])), 4),
    }


def report_json(path: str, manifest: Manifest, splits: Splits) -> dict[str, Any]:
    """The ``--json`` object: where the splits are, how they were made, records per split
    and per class, and the largest deviation from a target."""
    return {
        "schema": "datumio.split/1",
        "path": path,
        "dir": splits.dir,
        "how": dict(splits.how),
        "splits": [
            {
                "name": name,
                "records": splits.counts[name],
                "classes": dict(zip(manifest.class_names, splits.class_counts[name], strict=True)),
            }
            for name in splits.names
        ],
        "largest_deviation": largest_deviation(manifest, splits),
    }


def report_text(path: str, manifest: Manifest, splits: Splits) -> list[str]:
    """The lines a person reads: records per split and the largest deviation from a target."""
    how = splits.how
    lines = [
        f"{path}: {plural(len(splits.names), 'split')} in {splits.dir} ({how.get('method')}, "
        f"seed {how.get('seed')})"
    ]
    total = manifest.num_records or 1
    for name in splits.names:
        count = splits.counts[name]
        lines.append(f"  {name:<10} {count:>9,} records  {count / total:>6.1%}")
    worst = largest_deviation(manifest, splits)
    if worst is not None:
        lines.append(
            f"largest deviation from a target: {worst['records']:g} "
            f"{'record' if worst['records'] == 1 else 'records'} ({worst['split']}, "
            f"class {worst['class']!r}: {worst['count']} for a target of {worst['target']:g})"
        )
    return lines


def run(args: argparse.Namespace, prog: str) -> int:
    """Split a dataset from parsed arguments; returns the exit status."""
    keywords = {name: getattr(args, name) for name in _KEYWORDS}
    try:
        SplitRequest(**keywords)
    except OptionError as exc:
        print(f"{prog}: {printable(exc)}", file=sys.stderr)
        return EXIT_USAGE

    def step(name: str) -> None:
        if name == "wait" and not args.quiet:
            note = f"another run is writing {args.path}; waiting for it to finish (--wait)"
            print(f"{prog}: {printable(note)}", file=sys.stderr, flush=True)

    try:
        splits = split_dataset(args.path, **keywords, events=step)
        manifest = read_manifest(args.path)  # the classes the report counts
        splits = manifest.splits or splits  # what is there now (a run may have followed)
    except OptionError as exc:
        print(f"{prog}: {printable(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except DatumioError as exc:
        print(f"{prog}: {printable(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; the splits were not changed", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.json:
        print(json_text(report_json(args.path, manifest, splits)))
    elif not args.quiet:
        print("\n".join(printable(line) for line in report_text(args.path, manifest, splits)))
    return EXIT_OK


def main(argv: Sequence[str] | None = None, prog: str = "datumio split") -> int:
    """Entry point of ``datumio split`` and ``datumio-split`` (``prog`` names it)."""
    return run(build_parser(prog).parse_args(argv), prog)


if __name__ == "__main__":
    sys.exit(main())
