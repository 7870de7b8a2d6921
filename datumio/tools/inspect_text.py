"""The text form of ``datumio inspect``: the summary, the sampling report and one record.

Every renderer reads the typed reports of :mod:`datumio.inspect` by attribute and returns
lines that :func:`~datumio.tools.render.lines_text` escapes.
"""

from __future__ import annotations

from datumio.errors import printable
from datumio.inspect.duplicates import Duplicates
from datumio.inspect.record import RecordInfo
from datumio.inspect.sampling import ClassDraws, SamplingReport
from datumio.inspect.splits import SplitSummary
from datumio.inspect.summary import DatasetSummary, ImageSizes, Rejects
from datumio.shards.verify import VerifyReport
from datumio.tools.field_text import field_lines, fields_header, record_field_lines
from datumio.tools.render import bar_chart, human_bytes, lines_text, plural

#: With more classes than this, the text bar chart shows the largest and smallest only.
CHART_ROWS = 40


def _sizes(sizes: ImageSizes | None) -> str:
    if sizes is None:
        return "unknown"
    w, h, a = sizes.width, sizes.height, sizes.aspect
    if w.min == w.max and h.min == h.max:
        return f"{w.min:.0f}x{h.min:.0f} (all), aspect {a.min:.2f}"
    return (
        f"{w.min:.0f}-{w.max:.0f} x {h.min:.0f}-{h.max:.0f} (median "
        f"{w.median:.0f}x{h.median:.0f}), aspect w/h {a.min:.2f}-{a.max:.2f} "
        f"(median {a.median:.2f})"
    )


def _rounded(values: tuple[float, ...] | None) -> str:
    return "unknown" if not values else " ".join(f"{v:.2f}" for v in values)


def _overview(s: DatasetSummary) -> list[str]:
    """The first lines: format, records, bytes, images and where the dataset came from."""
    shards, size, image, stats = s.shards, s.on_disk, s.image, s.channel_stats
    formats = ", ".join(f"{k} {v}" for k, v in image.source_formats.items())
    low, high = shards.records_min, shards.records_max
    per_shard = f"{low}" if low == high else f"{low}-{high}"
    lines = [
        f"{s.path}: datumio format v{s.format_version}, {s.backend} backend, encoding {s.encoding}",
        f"  records   {s.records:,} in {plural(shards.count, 'shard')} ({per_shard} per shard)",
        f"  on disk   {human_bytes(size.total)} (shards {human_bytes(size.shards)}, index "
        f"{human_bytes(size.index)}); payload {human_bytes(shards.payload_bytes)}",
    ]
    if not s.has_images:
        lines.append("  images    none: records of a label and fields (see fields below)")
    else:
        lines += [
            f"  stored    {_sizes(image.stored)}",
            f"  source    {_sizes(image.source)}" + (f"; {formats}" if formats else ""),
            f"  pixels    {plural(image.channels, 'channel')}, mean {_rounded(stats.mean)}  "
            f"std {_rounded(stats.std)} ({stats.scale})",
        ]
    if s.ingest is not None and s.ingest.source:
        lines.append(f"  ingested  from {s.ingest.source} ({s.ingest.input or '?'})")
    return lines


def _classes(s: DatasetSummary) -> list[str]:
    """The imbalance ratio and the bar chart of records per class."""
    ratio = s.imbalance_ratio
    lines = [
        f"classes: {s.num_classes}, imbalance ratio "
        + ("n/a" if ratio is None else f"{ratio:.1f}")
        + " (largest / smallest non-empty)"
    ]
    chart = bar_chart([c.name for c in s.classes], [c.count for c in s.classes])
    if len(chart) > CHART_ROWS:
        hidden = len(chart) - CHART_ROWS
        chart = [*chart[: CHART_ROWS - 10], f"  ... {hidden} more classes ...", *chart[-10:]]
    lines += chart
    for empty in s.empty_classes:
        lines.append(f"  note: class {empty.name!r} has no records ({empty.why})")
    return lines


def render_summary(s: DatasetSummary) -> str:
    """The readable text form of a :func:`datumio.inspect.summary.summarize` report."""
    lines = _overview(s) + _classes(s)
    if s.splits is not None:
        lines += render_splits(s.splits, [c.name for c in s.classes])
    if s.fields:
        lines.append(fields_header(s.fields, s.records))
        lines += [line for f in s.fields for line in field_lines(f)]
    lines += _render_integrity(s.integrity)
    lines += _render_rejects(s.rejects)
    lines += _render_duplicates(s.duplicates, s.integrity, not s.has_images)
    if s.sampling is not None:
        lines += render_sampling(s.sampling)
    return lines_text(lines)


def render_splits(sp: SplitSummary, class_names: list[str]) -> list[str]:
    """Text lines of the stored splits: records per split, per class, and their problems."""
    made = [str(sp.how["method"])] if sp.how.get("method") else []
    made += [f"seed {sp.how['seed']}"] if "seed" in sp.how else []
    totals = ", ".join(f"{c.name} {c.records:,} ({c.share:.1%})" for c in sp.by_split)
    lines = [f"splits: {totals}; {', '.join([*made, sp.dir])}"]
    if sp.unassigned:
        lines.append(f"  {plural(sp.unassigned, 'record')} in no split")
    width = max((len(c.name) for c in sp.by_split), default=5) + 2
    lines.append(f"  {'class':<16}" + "".join(f"{c.name:>{width}}" for c in sp.by_split))
    order = sorted(range(len(class_names)), key=lambda k: -sum(c.classes[k] for c in sp.by_split))
    if len(order) > CHART_ROWS:
        order = [*order[: CHART_ROWS - 10], -1, *order[-10:]]
    for k in order:
        if k < 0:
            lines.append(f"  ... {len(class_names) - CHART_ROWS} more classes ...")
            continue
        row = "".join(f"{c.classes[k]:>{width}}" for c in sp.by_split)
        lines.append(f"  {printable(class_names[k])[:16]:<16}{row}")
    if sp.groups_checked and not sp.crossing_groups:
        lines.append("  groups: none has records in more than one split")
    lines += [f"  problem: {text}"[:200] for text in sp.problems[:10]]
    return lines


def _render_rejects(r: Rejects) -> list[str]:
    if not r.count:
        return ["rejected at ingest: none"]
    lines = [f"rejected at ingest: {plural(r.count, 'file')} (listed in {r.file})"]
    lines += [f"  {n:>6}  {reason}" for reason, n in list(r.by_reason.items())[:8]]
    for row in r.sample[:3]:
        detail = f" ({row.detail})" if row.detail else ""
        lines.append(f"  e.g. {row.path}: {row.reason}{detail}"[:110])
    return lines


def _render_integrity(report: VerifyReport | None) -> list[str]:
    if report is None:
        return []
    if report.ok:
        return [
            "integrity: sound (manifest, index and shard metadata agree; datumio verify also "
            "reads every record)"
        ]
    problems = [str(p) for p in report.problems]
    lines = [
        f"integrity: {plural(len(problems), 'problem')} (run datumio verify for the full check)"
    ]
    lines += [f"  {text}"[:160] for text in problems[:10]]
    if len(problems) > 10:
        lines.append(f"  ... {len(problems) - 10} more")
    return lines


def _render_duplicates(
    d: Duplicates | None, integrity: VerifyReport | None, no_images: bool = False
) -> list[str]:
    if d is None and integrity is not None and not integrity.ok:
        return ["duplicates: not checked (the dataset has integrity problems)"]
    if d is None and no_images:
        return ["duplicates: not checked (no images)"]
    if d is None:
        return ["duplicates: not checked (--no-duplicates)"]
    read = plural(d.records_read, "record")
    how = f"found by CRC32 and shape; {read} read to confirm byte for byte"
    if not d.groups:
        return [f"duplicates: none ({how})"]
    within, across = d.within_class, d.across_classes
    lines = [
        f"duplicates: {plural(d.groups, 'group')} of identical records, "
        f"{plural(d.duplicate_records, 'extra copy', 'extra copies')}",
        f"  within a class: {plural(within.redundant_records, 'extra copy', 'extra copies')}",
        f"  across classes: {plural(across.groups, 'group')}, {plural(across.records, 'record')} "
        "with different labels",
    ]
    for pair in across.class_pairs[:5]:
        lines.append(f"    {' / '.join(pair.classes)}: {plural(pair.groups, 'group')}")
    if across.groups_over_two_classes:
        many = plural(across.groups_over_two_classes, "group")
        lines.append(f"    {many} span more than two classes")
    for ex in d.examples[:5]:
        lines.append(f"  e.g. {ex.size} copies:")
        shown = list(zip(ex.ids, ex.sources, ex.classes, strict=True))[:4]
        lines += [f"    #{i:<8} {printable(cls)[:24]:<24} {src}" for i, src, cls in shown]
        if ex.size > len(shown):
            lines.append(f"    ... {ex.size - len(shown)} more")
    if d.unreadable_count:
        lines.append(
            f"  {plural(d.unreadable_count, 'record')} could not be read; run datumio verify"
        )
    return [*lines, f"  ({how})"]


def _sampling_rows(rows: list[ClassDraws]) -> list[ClassDraws | int]:
    """The rows of the sampling table, largest class first; over :data:`CHART_ROWS`, the
    largest and the smallest classes (they tell the story) around the count of the others."""
    rows = sorted(rows, key=lambda c: (-c.records, c.name))
    if len(rows) <= CHART_ROWS:
        return list(rows)
    return [*rows[: CHART_ROWS - 10], len(rows) - CHART_ROWS, *rows[-10:]]


def render_sampling(sp: SamplingReport) -> list[str]:
    """Text lines of a sampling report."""
    how = {"power": f"power={sp.power}", "weights": "weights"}.get(sp.plan.mode, sp.plan.mode)
    how_exact = "measured" if sp.exact else "expected values"
    lines = [
        f"sampling: {how}, {plural(sp.epochs, 'epoch')}, world size {sp.world_size}, seed "
        f"{sp.seed} ({how_exact})",
        f"  per epoch {sp.plan.epoch_size:,} draws, {sp.plan.rank_size:,} per rank"
        + (f" ({sp.dropped_per_epoch} dropped)" if sp.dropped_per_epoch else "")
        + f"; {sp.fraction_seen_per_epoch:.1%} of records seen per epoch, "
        f"{sp.fraction_seen_total:.1%} after {sp.epochs}",
        f"  {'class':<16} {'records':>8} {'draws/ep':>9} {'share':>6} {'repeats/ep':>11} "
        f"{'seen':>14} {'max':>4} {'per rank':>13}",
    ]
    ranks = sp.by_rank
    for c in _sampling_rows(list(sp.by_class)):
        if isinstance(c, int):
            lines.append(f"  ... {c} more classes ...")
            continue
        low, high = c.repeats_range
        rep = f"{c.repeats_per_epoch:.2f}" + ("" if low == high else f" ({low}-{high})")
        seen = f"{c.seen_after_epochs} ({c.coverage or 0:.0%})" if c.records else "-"
        per_rank = [r.by_class[c.id] for r in ranks]
        fewest, most = min(per_rank), max(per_rank)
        spread = f"{fewest}" if fewest == most else f"{fewest}-{most}"
        top = "-" if c.max_draws_of_a_record is None else str(c.max_draws_of_a_record)
        lines.append(
            f"  {printable(c.name)[:16]:<16} {c.records:>8} {c.draws_per_epoch:>9} "
            f"{c.share:>6.1%} {rep:>11} {seen:>14} {top:>4} {spread:>13}"
        )
    lines += [
        "  (seen: distinct records drawn in all epochs; max: most draws of one record in them;",
        "   per rank: fewest-most draws of the class on one rank, all epochs)",
    ]
    totals = ", ".join(str(r.draws) for r in ranks[:16])
    lines.append(f"  draws per rank, all epochs: {totals}{' ...' if sp.world_size > 16 else ''}")
    spb = sp.shards_per_batch
    if spb is not None:
        lines.append(
            f"  a batch of {spb.batch_size} reads from {spb.mean:.1f} of the "
            f"{spb.shards} shards on average ({spb.min}-{spb.max}; rank 0, epoch 0)"
        )
    lines += [f"  note: {n}" for n in sp.notes]
    return lines


def render_record(info: RecordInfo) -> str:
    """The text form of ``datumio inspect --record N``."""
    h, w, c = info.shape
    lines = [
        f"record {info.id}",
        f"  class     {info.class_name} (label {info.label})",
        f"  source    {info.source}",
        f"  shard     {info.shard} ({info.shard_file}), local id {info.local_id}",
        f"  shape     {h}x{w}x{c} (height x width x channels)",
        f"  payload   {info.payload_bytes:,} bytes, {info.payload_format}",
        f"  crc32     {info.crc32} ({'ok' if info.crc32_ok else 'MISMATCH: run verify'})",
    ]
    if info.group is not None:
        lines.append(f"  group     {info.group}")
    lines += record_field_lines(info)
    return lines_text(lines)
