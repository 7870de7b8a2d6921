"""``datumio-ingest SRC OUT``: pack a folder of images (a labels file, a Hugging Face
dataset, WebDataset tars, a COCO JSON) into a sharded dataset."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from datumio.codec import ENCODINGS
from datumio.errors import BadInputError, DatumioError, OptionError, printable
from datumio.fields.spec import parse_declarations
from datumio.ingest import IngestOptions, ingest
from datumio.ingest.options import IMPORTERS, parse_shard_size, parse_size
from datumio.tools.hooks import from_env
from datumio.tools.outputs import check_output_folder
from datumio.tools.render import json_text, progress_bar, render_ingest

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BAD_INPUT = 0, 1, 2, 3

EXAMPLES = """\
examples:
  datumio-ingest images/ out.lmdb
      one sub-folder per class; keep the original bytes (after a full decode check)
  datumio-ingest images/ out.h5 --encode jpeg --quality 90 --short-side 256
      HDF5 shards, shorter side resized to 256 at ingest, re-encoded as JPEG
  datumio-ingest photos/ out.lmdb --labels labels.csv --size 224x224 --encode raw
      labels file (path,label[,group] relative to photos/), centre-cropped raw pixels
  datumio-ingest photos/ out.lmdb --labels boxes.jsonl --field tags:multilabel
      other columns of the labels file become typed fields (JSONL types are inferred)
  datumio-ingest photos/ out.lmdb --labels labels.csv
      a "split" column (train, val ...) stores the splits in the dataset
  datumio-ingest hf_saved/ out.lmdb               (a Hugging Face save_to_disk folder or
      Parquet files: the Image column, the ClassLabel names, other columns as fields, splits)
  datumio-ingest hf_saved/ out.lmdb --column label=fine_label --split train --split test
  datumio-ingest 'shards/train-{000000..000099}.tar' out.lmdb
      WebDataset tars: the image by extension, the label from .cls or .json
  datumio-ingest val2017/ out.lmdb --from coco --labels instances_val2017.json
      COCO boxes, polygon/RLE masks, keypoints and iscrowd as fields
  datumio-ingest images/ out.lmdb --shard-size 256MiB --shuffle --seed 1 --json
  datumio-ingest images/ out.lmdb --executor dask            (a Dask LocalCluster)
  datumio-ingest images/ out.lmdb --executor dask=tcp://10.0.0.5:8786
  datumio-ingest images/ out.lmdb --resume      (after a crash or a full disk: finish,
                                                 reusing the finished shards)
  datumio-ingest --append new_images/ out.lmdb  (add new files as new shards)
  datumio-ingest --append new_images/ out.lmdb --wait forever
      (another run writing out.lmdb: wait for it; by default stop at once, naming it)

--size is width x height (as image tools write it; one number N means NxN); in Python,
IngestOptions(size=...) and Transform(size=...) are (height, width).
OUT's missing parent folders are created; a parent that is a file, or a folder that cannot
be written, stops the run before any image is read.

exit status: 0 done, 1 failed (a full disk, another run writing OUT ...: the message says
what to do), 2 bad usage (including an OUT that cannot be written), 3 stopped by bad input
(--on-error raise, or more rejects than --max-errors).

datumio ingest and datumio-ingest are the same command.
"""


def build_parser(prog: str = "datumio-ingest") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Decode and check every image below SRC in parallel, then pack images and "
        "labels into LMDB or HDF5 shards with a per-class index at OUT. Files that cannot be "
        "used are skipped and listed with a reason in OUT/rejects.jsonl.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(prog=prog)
    parser.add_argument(
        "src",
        metavar="SRC",
        help="input: a folder (one sub-folder per class, or the files --labels names), a "
        "Hugging Face dataset folder or Parquet file, WebDataset tars (a brace pattern or a "
        "folder of .tar files); --from says which when it cannot be told",
    )
    parser.add_argument("out", metavar="OUT", help="dataset to create: NAME.lmdb or NAME.h5")
    _add_input_options(parser)
    _add_storage_options(parser)
    _add_run_options(parser)
    return parser


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    """The "input" group: where the files and their labels come from."""
    src = parser.add_argument_group("input")
    src.add_argument(
        "--from",
        dest="importer",
        choices=list(IMPORTERS),
        default="auto",
        help="what SRC is (default auto: told from SRC and --labels)",
    )
    src.add_argument(
        "--column",
        action="append",
        metavar="ROLE=NAME",
        help="the input column (Hugging Face) or member/JSON key (WebDataset) of a record's "
        "image, label, group or split, e.g. --column label=fine_label (repeatable)",
    )
    src.add_argument(
        "--split",
        action="append",
        metavar="NAME",
        dest="splits",
        help="import only this split of the input (repeatable; default all)",
    )
    src.add_argument(
        "--labels",
        metavar="FILE",
        help="CSV/TSV/JSONL of path,label[,group]; paths relative to SRC",
    )
    src.add_argument(
        "--field",
        action="append",
        metavar="NAME:TYPE",
        help="type of the labels file's column NAME: int, float, multilabel, text, bytes, "
        "boxes, keypoints, mask, array:DTYPE[:LENGTH] (repeat per column; CSV/TSV columns "
        "beyond path,label,group need one)",
    )
    src.add_argument(
        "--classes",
        metavar="A,B,...",
        help="fixed class list and order for --labels; other labels are rejected",
    )


def _add_storage_options(parser: argparse.ArgumentParser) -> None:
    """The "storage" group: backend, encoding, sizes, shards and record order."""
    store = parser.add_argument_group("storage")
    store.add_argument("--format", choices=["lmdb", "hdf5"], help="default: from OUT's suffix")
    store.add_argument(
        "--encode",
        choices=["auto", *ENCODINGS],
        default="auto",
        help="keep original bytes, re-encode, or raw pixels (auto: keep, jpeg when resizing)",
    )
    store.add_argument("--quality", type=int, default=90, help="JPEG/WebP quality (default 90)")
    resize = store.add_mutually_exclusive_group()
    resize.add_argument("--max-side", type=int, metavar="N", help="shrink so no side exceeds N")
    resize.add_argument("--short-side", type=int, metavar="N", help="resize shorter side to N")
    resize.add_argument(
        "--size",
        metavar="WxH",
        help="resize to cover width x height (N: NxN), then centre-crop to it",
    )
    store.add_argument("--gray", action="store_true", help="store one grayscale channel")
    store.add_argument(
        "--background",
        default="255,255,255",
        metavar="R,G,B",
        help="colour under transparent pixels (default white)",
    )
    store.add_argument(
        "--shard-size",
        default="1GiB",
        metavar="SIZE",
        help="input bytes per shard with a unit (512MiB, 2GB) or a plain number of input "
        "files per shard (default 1GiB; small inputs get smaller shards to run in parallel)",
    )
    store.add_argument("--shuffle", action="store_true", help="shuffle record order (seeded)")
    store.add_argument("--seed", type=int, default=0, help="seed for --shuffle (default 0)")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """The "run" group: processes, bad files, what the run does to OUT, what it prints."""
    run = parser.add_argument_group("run")
    run.add_argument("--workers", type=int, help="decoding processes (default: all cores)")
    run.add_argument(
        "--on-error",
        choices=["skip", "raise"],
        default="skip",
        help="skip bad files (default) or stop at the first one",
    )
    run.add_argument("--strict", action="store_true", help="same as --on-error raise")
    run.add_argument("--max-errors", type=int, metavar="N", help="fail when over N rejects")
    run.add_argument(
        "--max-pixels",
        type=int,
        default=IngestOptions.max_pixels,
        help="reject larger images as decompression bombs (default: Pillow's limit)",
    )
    run.add_argument("--min-side", type=int, default=1, help="reject images with a smaller side")
    run.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    run.add_argument(
        "--executor",
        default="local",
        metavar="local|dask|dask=ADDR",
        help="where shard tasks run: local processes (default), a Dask LocalCluster (dask), "
        "or the Dask scheduler at ADDR (dask=tcp://HOST:PORT); needs datumio[dask]",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue a killed or failed run (a full disk) of the same command: its "
        "finished shards are reused",
    )
    run.add_argument(
        "--append",
        action="store_true",
        help="add SRC's files to the existing dataset OUT as new shards (ids stay)",
    )
    run.add_argument(
        "--wait",
        type=_cli_wait,
        default=0.0,
        metavar="SECONDS",
        help="when another run is writing OUT, wait up to SECONDS (or 'forever') for it to "
        "finish; default: stop at once, naming that run",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--json", action="store_true", help="print one JSON summary on stdout")


def options_from_args(args: argparse.Namespace) -> IngestOptions:
    shard_bytes, shard_records = parse_shard_size(args.shard_size)
    try:
        background = tuple(int(v) for v in args.background.split(","))
    except ValueError as exc:
        raise OptionError(f"--background {args.background!r} is not R,G,B") from exc
    return IngestOptions(
        format=args.format,
        encode=args.encode,
        quality=args.quality,
        max_side=args.max_side,
        short_side=args.short_side,
        size=_cli_size(args.size) if args.size else None,
        gray=args.gray,
        background=background,  # type: ignore[arg-type]  # length checked by IngestOptions
        min_side=args.min_side,
        max_pixels=args.max_pixels,
        shard_bytes=shard_bytes,
        shard_records=shard_records,
        shuffle=args.shuffle,
        seed=args.seed,
        workers=args.workers,
        labels_file=args.labels,
        class_names=tuple(args.classes.split(",")) if args.classes else None,
        on_error="raise" if args.strict else args.on_error,
        max_errors=args.max_errors,
        overwrite=args.overwrite,
        executor=args.executor,
        resume=args.resume,
        append=args.append,
        wait=args.wait,
        fields=_cli_fields(args.field),
        importer=args.importer,
        columns=_cli_columns(args.column),
        splits=tuple(args.splits) if args.splits else None,
    )


def _cli_columns(given: list[str] | None) -> dict[str, str] | None:
    """``--column ROLE=NAME`` (repeated) as ``IngestOptions.columns``; checked there."""
    if not given:
        return None
    pairs = [text.partition("=") for text in given]
    bad = [text for text, (_, eq, name) in zip(given, pairs, strict=True) if not eq or not name]
    if bad:
        raise OptionError(f"--column {bad[0]!r}: give ROLE=NAME, e.g. --column label=fine_label")
    return {role.strip(): name.strip() for role, _, name in pairs}


def _cli_wait(text: str) -> float | None:
    """``--wait``: seconds, or ``forever`` (None)."""
    if text.strip().lower() == "forever":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds or 'forever'"
        ) from None


def _cli_fields(declarations: list[str] | None) -> dict[str, str] | None:
    """``--field NAME:TYPE`` (repeated) as ``IngestOptions.fields``; checked there."""
    if not declarations:
        return None
    parse_declarations(declarations)  # a NAME:TYPE that does not split is named here
    return {text.partition(":")[0].strip(): text.partition(":")[2] for text in declarations}


def _cli_size(text: str) -> tuple[int, int]:
    """``--size``: ``WxH`` text (:func:`parse_size`) or one number N for NxN, as (height,
    width)."""
    if text.strip().isdigit():
        side = int(text)
        return side, side
    try:
        return parse_size(text)
    except OptionError:
        raise OptionError(
            f"--size {text!r}: give WxH, width x height such as 320x240, or one number N for NxN"
        ) from None


class Interrupts:
    """SIGINT (Ctrl-C) and SIGTERM stop the run at its next safe point, within a fraction of
    a second, and clean up; a second signal stops it at once.

    The handler only records the signal: an exception raised from it lands wherever the main
    thread is, which may be inside the process pool's start-up or a fork callback, where it
    is lost or leaves a lock held (the run would then finish, or hang). The run polls
    :meth:`stopped` while it waits for shards and checks at every step instead.
    """

    def __init__(self) -> None:
        self.signum: int | None = None

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt  # asked twice: stop now
        self.signum = signum

    def stopped(self) -> bool:
        return self.signum is not None

    def check(self) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    """Run an ingest from parsed arguments; returns the exit status."""
    prog = getattr(args, "prog", "datumio-ingest")
    try:
        options = options_from_args(args)
        hooks = from_env()
        if "://" not in args.out and not os.path.lexists(args.out):  # else the ingest judges
            check_output_folder("OUT", args.out)
    except OptionError as exc:
        print(f"{prog}: {printable(exc)}", file=sys.stderr)
        return EXIT_USAGE
    bar = progress_bar("ingest", unit="img", quiet=args.quiet)
    interrupts = Interrupts()

    def progress(done: int, total: int) -> None:  # called once per finished shard
        interrupts.check()
        bar.update(done, total)
        hooks.step("shard")

    def step(name: str) -> None:
        interrupts.check()
        if name == "wait":
            print(
                f"{prog}: another run is writing {printable(args.out)}; waiting for it to "
                "finish (--wait)",
                file=sys.stderr,
                flush=True,
            )
        hooks.step(name)

    # SIGTERM (kill, a scheduler's timeout) cleans up like Ctrl-C: no temporary is left.
    interrupts.install()
    try:
        report = ingest(
            args.src, args.out, options, progress=progress, events=step, stop=interrupts.stopped
        )
    except DatumioError as exc:
        bar.close()
        print(f"{prog}: {printable(exc)}", file=sys.stderr)
        for note in getattr(exc, "__notes__", ()):  # where a failed --resume run's build is
            print(f"{prog}: {printable(note)}", file=sys.stderr)
        return EXIT_BAD_INPUT if isinstance(exc, BadInputError) else EXIT_FAILED
    except KeyboardInterrupt:
        bar.close()
        print(f"{prog}: interrupted; nothing was written at OUT", file=sys.stderr)
        return 130
    bar.close()
    if args.json:
        print(json_text(report.to_dict()))
    else:
        print(render_ingest(report))
        if report.shards_reused:
            print(f"reused {report.shards_reused} finished shard(s) of an earlier run (--resume)")
    return EXIT_OK


def main(argv: Sequence[str] | None = None, prog: str = "datumio-ingest") -> int:
    """Entry point of ``datumio ingest`` and ``datumio-ingest`` (``prog`` names it)."""
    return run(build_parser(prog).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
