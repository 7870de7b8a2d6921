"""``datumio-inspect PATH``: what is in a dataset, what a sampler will show, and pictures."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from PIL import Image

from datumio.augment import opencv_probe
from datumio.errors import DatumioError, OptionError, printable
from datumio.inspect.fields import DEFAULT_FIELD_SAMPLE
from datumio.inspect.sampling import SamplingReport, parse_sampling, sampling_report
from datumio.inspect.summary import describe_record, summarize
from datumio.remote import local_copy
from datumio.shards.dataset import Dataset
from datumio.shards.verify import Problem, VerifyReport, verify
from datumio.tools.field_text import field_lines, fields_header, record_field_lines
from datumio.tools.outputs import check_distinct, check_image_file, check_output_file
from datumio.tools.pictures import class_histogram, contact_sheet, html_report
from datumio.tools.render import bar_chart, human_bytes, json_text, lines_text, progress_bar

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: With more classes than this, the text bar chart shows the largest and smallest only.
_CHART_ROWS = 40

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


def _sizes(d: dict[str, Any]) -> str:
    if not d:
        return "unknown"
    w, h, a = d["width"], d["height"], d["aspect"]
    if w["min"] == w["max"] and h["min"] == h["max"]:
        return f"{w['min']:.0f}x{h['min']:.0f} (all), aspect {a['min']:.2f}"
    return (
        f"{w['min']:.0f}-{w['max']:.0f} x {h['min']:.0f}-{h['max']:.0f} (median "
        f"{w['median']:.0f}x{h['median']:.0f}), aspect w/h {a['min']:.2f}-{a['max']:.2f} "
        f"(median {a['median']:.2f})"
    )


def _n(count: int, one: str, many: str = "") -> str:
    """``1 group``, ``2 groups``: a count with its noun."""
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def _rounded(values: Sequence[float] | None) -> str:
    return "unknown" if not values else " ".join(f"{v:.2f}" for v in values)


def render_summary(s: dict[str, Any]) -> str:
    """The readable text form of a :func:`datumio.inspect.summary.summarize` object."""
    shards, size, image, ingest = s["shards"], s["bytes"], s["image"], s["ingest"]
    formats = ", ".join(f"{k} {v}" for k, v in image["source_formats"].items())
    per_shard = (
        f"{shards['records_min']}"
        if shards["records_min"] == shards["records_max"]
        else f"{shards['records_min']}-{shards['records_max']}"
    )
    lines = [
        f"{s['path']}: datumio format v{s['format_version']}, {s['backend']} backend, "
        f"encoding {s['encoding']}",
        f"  records   {s['records']:,} in {_n(shards['count'], 'shard')} ({per_shard} per shard)",
        f"  on disk   {human_bytes(size['total'])} (shards {human_bytes(size['shards'])}, index "
        f"{human_bytes(size['index'])}); payload {human_bytes(shards['payload_bytes'])}",
    ]
    if s["encoding"] == "none":
        lines.append("  images    none: records of a label and fields (see fields below)")
    else:
        lines += [
            f"  stored    {_sizes(image['stored'])}",
            f"  source    {_sizes(image['source'])}" + (f"; {formats}" if formats else ""),
            f"  pixels    {_n(image['channels'], 'channel')}, mean "
            f"{_rounded(s['channel_stats']['mean'])}  std "
            f"{_rounded(s['channel_stats']['std'])} ({s['channel_stats']['scale']})",
        ]
    if ingest.get("source"):
        lines.append(f"  ingested  from {ingest['source']} ({ingest.get('input', '?')})")
    ratio = s["imbalance_ratio"]
    lines.append(
        f"classes: {s['num_classes']}, imbalance ratio "
        + ("n/a" if ratio is None else f"{ratio:.1f}")
        + " (largest / smallest non-empty)"
    )
    chart = bar_chart([c["name"] for c in s["classes"]], [c["count"] for c in s["classes"]])
    if len(chart) > _CHART_ROWS:
        hidden = len(chart) - _CHART_ROWS
        chart = [*chart[: _CHART_ROWS - 10], f"  ... {hidden} more classes ...", *chart[-10:]]
    lines += chart
    for empty in s["empty_classes"]:
        lines.append(f"  note: class {empty['name']!r} has no records ({empty['why']})")
    if s["fields"]:
        lines.append(fields_header(s["fields"], s["records"]))
        lines += [line for f in s["fields"] for line in field_lines(f)]
    lines += _render_integrity(s["integrity"])
    lines += _render_rejects(s["rejects"])
    lines += _render_duplicates(s["duplicates"], s["integrity"], s["encoding"] == "none")
    if s["sampling"] is not None:
        lines += render_sampling(s["sampling"])
    return lines_text(lines)


def _render_rejects(r: dict[str, Any]) -> list[str]:
    if not r["count"]:
        return ["rejected at ingest: none"]
    lines = [f"rejected at ingest: {_n(r['count'], 'file')} (listed in {r['file']})"]
    lines += [f"  {n:>6}  {reason}" for reason, n in list(r["by_reason"].items())[:8]]
    for row in r["sample"][:3]:
        detail = f" ({row['detail']})" if row.get("detail") else ""
        lines.append(f"  e.g. {row.get('path')}: {row.get('reason')}{detail}"[:110])
    return lines


def _render_integrity(d: dict[str, Any] | None) -> list[str]:
    if d is None:
        return []
    if d["ok"]:
        return [
            "integrity: sound (manifest, index and shard metadata agree; datumio verify also "
            "reads every record)"
        ]
    problems = [str(Problem(**p)) for p in d["problems"]]
    lines = [f"integrity: {_n(len(problems), 'problem')} (run datumio verify for the full check)"]
    lines += [f"  {text}"[:160] for text in problems[:10]]
    if len(problems) > 10:
        lines.append(f"  ... {len(problems) - 10} more")
    return lines


def _render_duplicates(
    d: dict[str, Any] | None, integrity: dict[str, Any] | None, no_images: bool = False
) -> list[str]:
    if d is None and integrity is not None and not integrity["ok"]:
        return ["duplicates: not checked (the dataset has integrity problems)"]
    if d is None and no_images:
        return ["duplicates: not checked (no images)"]
    if d is None:
        return ["duplicates: not checked (--no-duplicates)"]
    how = (
        f"found by CRC32 and shape; {_n(d['records_read'], 'record')} read to confirm byte for byte"
    )
    if not d["groups"]:
        return [f"duplicates: none ({how})"]
    within, across = d["within_class"], d["across_classes"]
    lines = [
        f"duplicates: {_n(d['groups'], 'group')} of identical records, "
        f"{_n(d['duplicate_records'], 'extra copy', 'extra copies')}",
        f"  within a class: {_n(within['redundant_records'], 'extra copy', 'extra copies')}",
        f"  across classes: {_n(across['groups'], 'group')}, {_n(across['records'], 'record')} "
        "with different labels",
    ]
    for pair in across["class_pairs"][:5]:
        lines.append(f"    {' / '.join(pair['classes'])}: {_n(pair['groups'], 'group')}")
    if across["groups_over_two_classes"]:
        many = _n(across["groups_over_two_classes"], "group")
        lines.append(f"    {many} span more than two classes")
    for ex in d["examples"][:5]:
        lines.append(f"  e.g. {ex['size']} copies:")
        shown = list(zip(ex["ids"], ex["sources"], ex["classes"], strict=True))[:4]
        lines += [f"    #{i:<8} {printable(cls)[:24]:<24} {src}" for i, src, cls in shown]
        if ex["size"] > len(shown):
            lines.append(f"    ... {ex['size'] - len(shown)} more")
    if d["unreadable_count"]:
        lines.append(
            f"  {_n(d['unreadable_count'], 'record')} could not be read; run datumio verify"
        )
    return [*lines, f"  ({how})"]


def render_sampling(sp: dict[str, Any]) -> list[str]:
    """Text lines of a sampling report dict (``SamplingReport.to_dict()``)."""
    how = {"power": f"power={sp['power']}", "weights": "weights"}.get(sp["mode"], sp["mode"])
    how_exact = "measured" if sp["exact"] else "expected values"
    lines = [
        f"sampling: {how}, {_n(sp['epochs'], 'epoch')}, world size {sp['world_size']}, seed "
        f"{sp['seed']} ({how_exact})",
        f"  per epoch {sp['epoch_size']:,} draws, {sp['rank_size']:,} per rank"
        + (f" ({sp['dropped_per_epoch']} dropped)" if sp["dropped_per_epoch"] else "")
        + f"; {sp['fraction_seen_per_epoch']:.1%} of records seen per epoch, "
        f"{sp['fraction_seen_total']:.1%} after {sp['epochs']}",
        f"  {'class':<16} {'records':>8} {'draws/ep':>9} {'share':>6} {'repeats/ep':>11} "
        f"{'seen':>14} {'max':>4} {'per rank':>13}",
    ]
    rows = sorted(sp["classes"], key=lambda c: (-c["records"], c["name"]))
    if len(rows) > _CHART_ROWS:  # the largest and the smallest classes tell the story
        hidden = len(rows) - _CHART_ROWS
        rows = [*rows[: _CHART_ROWS - 10], {"hidden": hidden}, *rows[-10:]]
    for c in rows:
        if "hidden" in c:
            lines.append(f"  ... {c['hidden']} more classes ...")
            continue
        low, high = c["repeats_range"]
        rep = f"{c['repeats_per_epoch']:.2f}" + ("" if low == high else f" ({low}-{high})")
        seen = f"{c['seen_after_epochs']} ({c['coverage']:.0%})" if c["records"] else "-"
        ranks = [r["by_class"][c["id"]] for r in sp["per_rank"]]
        spread = f"{min(ranks)}" if min(ranks) == max(ranks) else f"{min(ranks)}-{max(ranks)}"
        top = "-" if c["max_draws_of_a_record"] is None else str(c["max_draws_of_a_record"])
        lines.append(
            f"  {printable(c['name'])[:16]:<16} {c['records']:>8} {c['draws_per_epoch']:>9} "
            f"{c['share']:>6.1%} {rep:>11} {seen:>14} {top:>4} {spread:>13}"
        )
    lines += [
        "  (seen: distinct records drawn in all epochs; max: most draws of one record in them;",
        "   per rank: fewest-most draws of the class on one rank, all epochs)",
    ]
    totals = ", ".join(str(r["draws"]) for r in sp["per_rank"][:16])
    lines.append(f"  draws per rank, all epochs: {totals}{' ...' if sp['world_size'] > 16 else ''}")
    spb = sp.get("shards_per_batch")
    if spb:
        lines.append(
            f"  a batch of {spb['batch_size']} reads from {spb['mean']:.1f} of the "
            f"{spb['shards']} shards on average ({spb['min']}-{spb['max']}; rank 0, epoch 0)"
        )
    lines += [f"  note: {n}" for n in sp["notes"]]
    return lines


def render_record(info: dict[str, Any]) -> str:
    h, w, c = info["shape"]
    lines = [
        f"record {info['id']}",
        f"  class     {info['class']} (label {info['label']})",
        f"  source    {info['source']}",
        f"  shard     {info['shard']} ({info['shard_file']}), local id {info['local_id']}",
        f"  shape     {h}x{w}x{c} (height x width x channels)",
        f"  payload   {info['payload_bytes']:,} bytes, {info['payload_format']}",
        f"  crc32     {info['crc32']} ({'ok' if info['crc32_ok'] else 'MISMATCH: run verify'})",
    ]
    if "group" in info:
        lines.append(f"  group     {info['group']}")
    lines += record_field_lines(info)
    return lines_text(lines)


def _records(args: argparse.Namespace, ds: Dataset) -> int:
    """``--record`` / ``--save-record``: one record, not the dataset summary."""
    out: dict[str, Any] = {}
    if args.record is not None:
        out = describe_record(ds, args.record)
    if args.save_record is not None:
        text, path = args.save_record
        try:
            i = int(text)
        except ValueError:
            raise OptionError(
                f"--save-record N OUT.png: N must be a record id, got {text!r}"
            ) from None
        pixels = ds.image(i)
        Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(path)
        note = f"record {i} ({pixels.shape[1]}x{pixels.shape[0]}) written to {path}"
        if args.json:
            out.setdefault("saved", {"id": i, "file": path})
        elif not args.quiet:
            print(printable(note), file=sys.stderr)
    if args.json:
        print(json_text(out))
    elif args.record is not None:
        print(render_record(out))
    if out.get("crc32_ok") is False:
        print(f"record {out['id']} fails its CRC32 check: run datumio verify", file=sys.stderr)
        return EXIT_FAILED
    if "fields_error" in out:
        print(printable(f"record {out['id']}: {out['fields_error']}"), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _pictures(args: argparse.Namespace, ds: Dataset, summary: dict[str, Any]) -> None:
    """Write --histogram, --grid and --html (the page holds both pictures)."""
    sp = summary["sampling"]
    drawn = None if sp is None else [c["draws_per_epoch"] for c in sp["classes"]]
    spec = "" if sp is None else "weights" if sp["mode"] == "weights" else args.sampling
    images: dict[str, Image.Image] = {}
    written = []
    if args.histogram or args.html:
        natural = [c["count"] for c in summary["classes"]]
        label = f"{spec} draws per epoch"
        hist = class_histogram(ds.class_names, natural, drawn, sampled_label=label)
        images["Records per class"] = hist
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
        f"{ds.path} has {_n(len(integrity.problems), 'integrity problem')} "
        f"(the first: {integrity.problems[0]})"
    )
    print(f"{prog}: {first}; run datumio verify for the full check", file=sys.stderr)
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
            print(json_text(summary))
        else:
            print(render_summary(summary))
            print(f"decoding here: {opencv_probe.describe()}")
        sys.stdout.flush()
        if not integrity.ok:
            return _integrity_status(prog, ds, integrity)
        _pictures(args, ds, summary)
    except (OptionError, IndexError) as exc:
        print(f"{prog}: {printable(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (DatumioError, OSError, ValueError) as exc:
        print(f"{prog}: {printable(exc)}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        ds.close()
    return EXIT_OK


def main(argv: Sequence[str] | None = None, prog: str = "datumio-inspect") -> int:
    """Entry point of ``datumio inspect`` and ``datumio-inspect`` (``prog`` names it)."""
    return run(build_parser(prog).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
