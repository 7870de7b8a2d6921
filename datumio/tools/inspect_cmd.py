"""``datumio-inspect PATH``: what is in a dataset, what a sampler will show, and pictures."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from PIL import Image

from datumio.augment import opencv_probe
from datumio.errors import DatumioError, OptionError, printable
from datumio.inspect.fields import DEFAULT_FIELD_SAMPLE
from datumio.inspect.record import describe_record
from datumio.inspect.sampling import SamplingReport, parse_sampling, sampling_report
from datumio.inspect.summary import DatasetSummary, summarize
from datumio.remote import local_copy
from datumio.shards.dataset import Dataset
from datumio.shards.verify import VerifyReport, verify
from datumio.tools.inspect_html import html_report
from datumio.tools.inspect_text import render_record, render_summary
from datumio.tools.outputs import check_distinct, check_image_file, check_output_file
from datumio.tools.pictures import class_histogram, contact_sheet
from datumio.tools.render import json_text, plural, progress_bar

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

EXAMPLES = """\
examples:
  datumio-inspect out.lmdb
      format, sizes, channel statistics, classes, rejects and duplicate records
  datumio-inspect out.lmdb --json > summary.json
  datumio-inspect out.lmdb --sampling balanced --epochs 10 --world-size 8
      what a balanced sampler draws: per class, per epoch, per rank
  datumio-inspect out.lmdb --sampling power=0.5 --histogram classes.png
  datumio-inspect out.lmdb --sampling weights=weights.json
      weights.json: {"cat": 2, "dog": 1} (class names or ids)
  datumio-inspect out.lmdb --grid grid.png --per-class 12 --html report.html
  datumio-inspect out.lmdb --record 17 --save-record 17 r17.png
      record 17's metadata and fields, and its pixels
  datumio-inspect out.lmdb --field-sample 5000
      field statistics (boxes per image, box sizes, mask pixel shares...) from 5000 records

Every run checks the dataset's integrity quickly (manifest, index and each shard's
metadata; datumio verify also reads every record) and exits 1 on any problem, after
printing the summary with the problems listed.

Output files (--grid, --histogram, --html, --save-record) are checked before the dataset
is read: their folder must exist and be writable.

exit status: 0 done, 1 failed (not a dataset, unreadable, an integrity problem),
2 bad usage (including an output path that cannot be written).

datumio inspect and datumio-inspect are the same command.
"""


def build_parser(prog: str = "datumio-inspect") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Summarise a datumio dataset: format, size on disk, image sizes, channel "
        "statistics, classes with a bar chart, files rejected at ingest and duplicate records; "
        "report what a sampler will show the model; draw a contact sheet, a class histogram "
        "and a self-contained HTML page.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(prog=prog)
    parser.add_argument("path", metavar="PATH", help="dataset directory (out.lmdb, out.h5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument(
        "--no-duplicates", action="store_true", help="skip the duplicate-record check"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or notes on stderr")
    parser.add_argument(
        "--field-sample",
        type=int,
        default=DEFAULT_FIELD_SAMPLE,
        metavar="N",
        help="records read at most for the statistics of fields without a global index "
        f"(all but int and multilabel; default {DEFAULT_FIELD_SAMPLE}, chosen by --seed)",
    )
    samp = parser.add_argument_group("sampling report")
    samp.add_argument(
        "--sampling",
        metavar="MODE",
        help="balanced | natural | power=A | weights=FILE (JSON {class name or id: weight})",
    )
    samp.add_argument("--epochs", type=int, metavar="E", help="epochs to report on (default 1)")
    samp.add_argument("--world-size", type=int, metavar="W", help="ranks (default 1)")
    samp.add_argument("--epoch-size", type=int, metavar="N", help="draws per epoch, all ranks")
    samp.add_argument(
        "--seed", type=int, default=0, help="sampler, --grid and --field-sample seed (default 0)"
    )
    samp.add_argument(
        "--locality",
        type=int,
        default=0,
        metavar="K",
        help="the locality order, K shards per window (default 0: shuffled)",
    )
    samp.add_argument(
        "--lockstep",
        action="store_true",
        help="with --locality: every class in the same window at once (bounded shard caches)",
    )
    samp.add_argument(
        "--batch-size",
        type=int,
        default=64,
        metavar="B",
        help="batch size of the shards-per-batch figure (default 64)",
    )
    pics = parser.add_argument_group("pictures")
    pics.add_argument("--grid", metavar="OUT.png", help="contact sheet: N records per class")
    pics.add_argument(
        "--per-class",
        type=int,
        default=8,
        metavar="N",
        help="records per class in --grid (default 8)",
    )
    pics.add_argument("--histogram", metavar="OUT.png", help="class counts, natural vs sampled")
    pics.add_argument("--html", metavar="OUT.html", help="one page: summary, histogram, grid")
    pics.add_argument(
        "--no-annotations",
        action="store_true",
        help="do not draw boxes, masks and keypoints on the grid (drawn by default)",
    )
    rec = parser.add_argument_group("one record")
    rec.add_argument("--record", type=int, metavar="N", help="print record N's metadata")
    rec.add_argument(
        "--save-record", nargs=2, metavar=("N", "OUT.png"), help="write record N's pixels"
    )
    return parser


def build_report(args: argparse.Namespace, ds: Dataset) -> SamplingReport | None:
    if args.sampling is None:
        if args.epochs is not None or args.world_size is not None or args.epoch_size is not None:
            raise OptionError("--epochs, --world-size and --epoch-size need --sampling MODE")
        return None
    mode, weights, power = parse_sampling(args.sampling, ds.class_names)
    return sampling_report(
        ds,
        mode,
        weights=weights,
        power=power,
        epochs=1 if args.epochs is None else args.epochs,
        world_size=1 if args.world_size is None else args.world_size,
        epoch_size=args.epoch_size,
        seed=args.seed,
        batch_size=args.batch_size,
        locality=args.locality,
        lockstep=args.lockstep,
    )


def _save_record(args: argparse.Namespace, ds: Dataset) -> dict[str, object]:
    """``--save-record N OUT.png``: write record N's pixels; ``{"id", "file"}`` for --json."""
    text, path = args.save_record
    try:
        i = int(text)
    except ValueError:
        raise OptionError(f"--save-record N OUT.png: N must be a record id, got {text!r}") from None
    pixels = ds.image(i)
    Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(path)
    if not args.json and not args.quiet:
        note = f"record {i} ({pixels.shape[1]}x{pixels.shape[0]}) written to {path}"
        print(printable(note), file=sys.stderr)
    return {"id": i, "file": path}


def _records(args: argparse.Namespace, ds: Dataset) -> int:
    """``--record`` / ``--save-record``: one record, not the dataset summary."""
    info = None if args.record is None else describe_record(ds, args.record)
    saved = None if args.save_record is None else _save_record(args, ds)
    if args.json:
        out = {} if info is None else info.to_json()
        print(json_text(out if saved is None else {**out, "saved": saved}))
    elif info is not None:
        print(render_record(info))
    if info is None:
        return EXIT_OK
    if not info.crc32_ok:
        print(f"record {info.id} fails its CRC32 check: run datumio verify", file=sys.stderr)
        return EXIT_FAILED
    if info.fields_error is not None:
        print(printable(f"record {info.id}: {info.fields_error}"), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _histogram(args: argparse.Namespace, ds: Dataset, summary: DatasetSummary) -> Image.Image:
    """Records per class; with --sampling, the draws per epoch beside them."""
    sp = summary.sampling
    drawn = None if sp is None else [c.draws_per_epoch for c in sp.by_class]
    spec = "" if sp is None else "weights" if sp.plan.mode == "weights" else args.sampling
    natural = [c.count for c in summary.classes]
    label = f"{spec} draws per epoch"
    return class_histogram(ds.class_names, natural, drawn, sampled_label=label)


def _pictures(args: argparse.Namespace, ds: Dataset, summary: DatasetSummary) -> None:
    """Write --histogram, --grid and --html (the page holds both pictures)."""
    images: dict[str, Image.Image] = {}
    written = []
    if args.histogram or args.html:
        hist = images["Records per class"] = _histogram(args, ds, summary)
        if args.histogram:
            hist.save(args.histogram)
            written.append(args.histogram)
    if (args.grid or args.html) and not ds.has_images:
        raise OptionError(f"{ds.path} has no images: --grid and --html need pictures")
    if args.grid or args.html:
        grid = contact_sheet(
            ds, args.per_class, args.seed, annotations=False if args.no_annotations else None
        )
        images[f"{args.per_class} records per class"] = grid
        if args.grid:
            grid.save(args.grid)
            written.append(args.grid)
    if args.html:
        with open(args.html, "w", encoding="utf-8") as fh:
            fh.write(html_report(summary, images))
        written.append(args.html)
    if written and not args.quiet:
        print(printable(f"wrote {', '.join(written)}"), file=sys.stderr)


def _integrity_status(prog: str, ds: Dataset, integrity: VerifyReport) -> int:
    """EXIT_OK for a sound dataset; else say so on stderr and return EXIT_FAILED."""
    if integrity.ok:
        return EXIT_OK
    first = printable(
        f"{ds.path} has {plural(len(integrity.problems), 'integrity problem')} "
        f"(the first: {integrity.problems[0]})"
    )
    print(f"{prog}: {first}; run datumio verify for the full check", file=sys.stderr)
    return EXIT_FAILED


def _splits_status(prog: str, summary: DatasetSummary) -> int:
    """EXIT_OK unless the stored splits have problems (a group in two splits, a damaged
    split file): then say so on stderr and return EXIT_FAILED."""
    problems = () if summary.splits is None else summary.splits.problems
    if not problems:
        return EXIT_OK
    first = f"{plural(len(problems), 'problem')} in the stored splits (the first: {problems[0]})"
    print(f"{prog}: {printable(first)}", file=sys.stderr)
    return EXIT_FAILED


def _check_outputs(args: argparse.Namespace) -> None:
    """Every file this run would write can be written (before any work starts)."""
    saved = None if args.save_record is None else args.save_record[1]
    outputs = [
        ("--grid", args.grid),
        ("--histogram", args.histogram),
        ("--html", args.html),
        ("--save-record", saved),
    ]
    for option, path in outputs:
        if path is not None and option == "--html":
            check_output_file(option, path)
        elif path is not None:
            check_image_file(option, path)
    check_distinct(outputs)


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.per_class < 1:
        return f"--per-class must be >= 1, got {args.per_class}"
    if args.field_sample < 1:
        return f"--field-sample must be >= 1 record, got {args.field_sample}"
    extras = (args.grid, args.histogram, args.html, args.sampling)
    one_record = args.record is not None or args.save_record is not None
    if one_record and any(v is not None for v in extras):
        return (
            "--record/--save-record show one record; run --sampling, --grid, --histogram "
            "and --html in a separate call"
        )
    try:
        _check_outputs(args)
    except OptionError as exc:
        return str(exc)
    return None


def run(args: argparse.Namespace) -> int:
    """Inspect a dataset from parsed arguments; returns the exit status."""
    prog = getattr(args, "prog", "datumio-inspect")
    problem = _usage_problem(args)
    if problem is not None:
        print(f"{prog}: {printable(problem)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        path = local_copy(args.path)  # a URL: its cache, every shard downloaded
        ds = Dataset(path)
    except DatumioError as exc:
        print(f"{prog}: {printable(exc)}", file=sys.stderr)
        return EXIT_FAILED
    try:
        integrity = verify(path, records=False)
        if args.record is not None or args.save_record is not None:
            code = _records(args, ds)
            return _integrity_status(prog, ds, integrity) if code == EXIT_OK else code
        report = build_report(args, ds)
        bar = progress_bar("duplicates", unit="rec", quiet=args.quiet)
        field_bar = progress_bar("fields", unit="rec", quiet=args.quiet)
        try:
            summary = summarize(
                ds,
                # Duplicates read every shard's CRC32 list: not from shards known damaged.
                duplicates=not args.no_duplicates and integrity.ok,
                sampling=report,
                integrity=integrity,
                progress=bar.update,
                field_sample=args.field_sample,
                seed=args.seed,
                field_progress=field_bar.update,
            )
        finally:
            bar.close()
            field_bar.close()
        if args.json:
            print(json_text(summary.to_json()))
        else:
            print(render_summary(summary))
            print(f"decoding here: {opencv_probe.describe()}")
        sys.stdout.flush()
        if not integrity.ok:
            return _integrity_status(prog, ds, integrity)
        _pictures(args, ds, summary)
        return _splits_status(prog, summary)
    except (OptionError, IndexError) as exc:
        print(f"{prog}: {printable(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (DatumioError, OSError, ValueError) as exc:
        print(f"{prog}: {printable(exc)}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        ds.close()


def main(argv: Sequence[str] | None = None, prog: str = "datumio-inspect") -> int:
    """Entry point of ``datumio inspect`` and ``datumio-inspect`` (``prog`` names it)."""
    return run(build_parser(prog).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
