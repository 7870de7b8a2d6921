"""``datumio verify PATH``: recompute every record's CRC32 and check that the parts agree."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from datumio.errors import DatumioError, printable
from datumio.remote import local_copy
from datumio.shards.manifest import Manifest, read_manifest
from datumio.shards.splits import check_splits
from datumio.shards.verify import Problem, VerifyReport, verify
from datumio.tools.render import json_text, progress_bar

EXAMPLES = """\
examples:
  datumio verify out.lmdb              CRC32 of every record, manifest/index/shards agree
  datumio verify out.h5 --decode       also decode every record's pixels
  datumio verify out.lmdb --json       one JSON object on stdout

exit status: 0 sound, 1 problems found (listed with shard, record and key), 2 bad usage.
Nothing on disk is changed; a read-only copy of a dataset can be verified.

datumio verify and datumio-verify are the same command.
"""

_SHOWN = 50


@dataclass(frozen=True)
class _Opened:
    """What :func:`check_splits` reads of a dataset: where it is and its manifest."""

    path: str
    manifest: Manifest


def _manifest(path: str) -> Manifest | None:
    """The dataset's manifest, or None when it does not load (the report says why)."""
    try:
        return read_manifest(path)
    except (DatumioError, OSError, ValueError):
        return None


def _check_splits(report: VerifyReport, manifest: Manifest | None) -> list[str]:
    """Add the problems of the stored split files to ``report``; the split names."""
    if manifest is None or manifest.splits is None:
        return []
    report.problems += [Problem(text) for text in check_splits(_Opened(report.path, manifest))]
    return list(manifest.splits.names)


def build_parser(prog: str = "datumio verify") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Check a dataset's integrity: manifest, index and shards agree, every "
        "record's CRC32 matches, and (--decode) every record decodes.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", metavar="PATH", help="dataset directory (out.lmdb / out.h5)")
    parser.add_argument("--decode", action="store_true", help="also decode every record")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        path = local_copy(args.path)  # a URL: its cache, every shard downloaded
    except DatumioError as exc:
        print(f"datumio verify: {printable(exc)}", file=sys.stderr)
        return 1
    bar = progress_bar("verify", unit="rec", quiet=args.quiet)
    try:
        report = verify(path, decode=args.decode, progress=bar.update)
    finally:
        bar.close()
    manifest = _manifest(path)
    splits = _check_splits(report, manifest)
    if args.json:
        print(json_text(report.to_dict()))
        return 0 if report.ok else 1
    what = "records checked and decoded" if report.decoded else "records checked"
    print(
        f"{printable(report.path)}: {report.records_checked} {what} in "
        f"{report.shards_checked} shard(s), {report.seconds:.1f} s"
    )
    names = [spec.name for spec in manifest.fields] if manifest is not None else []
    if names:
        checks = (
            "CRC32, decoded, int and multilabel values against the index"
            if report.decoded
            else "CRC32 (--decode also decodes them)"
        )
        shown = printable(", ".join(names))
        print(f"fields: {len(names)} ({shown}), every record's checked: {checks}")
    if splits:
        print(f"splits: {len(splits)} ({', '.join(splits)}), checked against the index")
    if report.ok:
        print("sound: manifest, index and shards agree; every CRC32 matches")
        return 0
    print(f"{len(report.problems)} problem(s):")
    for problem in report.problems[:_SHOWN]:
        print(f"  {printable(problem)}")
    if len(report.problems) > _SHOWN:
        print(f"  ... and {len(report.problems) - _SHOWN} more (use --json for all)")
    return 1


def main(argv: Sequence[str] | None = None, prog: str = "datumio verify") -> int:
    """Entry point of ``datumio verify`` and ``datumio-verify`` (``prog`` names it)."""
    return run(build_parser(prog).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
