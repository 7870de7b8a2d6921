"""The reports of ``datumio inspect`` as an editor and mypy see them: typed attributes all
the way down, never the keys of a dict.

Type-checked by tests/typing/test_typed_api.py, never run. ``# E:``/``# N:`` say what
mypy must report on that line; every other line must pass.
"""

from __future__ import annotations

from typing import reveal_type

import datumio
from datumio.inspect.field_stats import BoxValues, IntValues
from datumio.inspect.record import describe_record
from datumio.inspect.sampling import sampling_report
from datumio.inspect.summary import summarize


def attributes() -> None:
    with datumio.open("out.lmdb") as ds:
        summary = summarize(ds, sampling=sampling_report(ds, "balanced"))
        record = describe_record(ds, 0)
    reveal_type(summary.classes[0].count)  # N: Revealed type is "int"
    reveal_type(summary.imbalance_ratio)  # N: Revealed type is "float | None"
    reveal_type(summary.on_disk.total)  # N: Revealed type is "int"
    reveal_type(record.crc32_ok)  # N: Revealed type is "bool"
    if summary.image.stored is not None:
        reveal_type(summary.image.stored.width.median)  # N: Revealed type is "float"
    if summary.duplicates is not None:
        reveal_type(summary.duplicates.examples[0].sources)  # N: Revealed type is "tuple[str, ...]"
    if summary.sampling is not None:
        reveal_type(summary.sampling.by_class[0].coverage)  # N: Revealed type is "float | None"
    for f in summary.fields:
        if isinstance(f.values, BoxValues):
            reveal_type(f.values.per_image.max)  # N: Revealed type is "int | None"
        elif isinstance(f.values, IntValues):
            reveal_type(f.values.top)  # N: Revealed type is "tuple[tuple[int, int], ...]"


def wrong_uses() -> None:
    with datumio.open("out.lmdb") as ds:
        summary = summarize(ds)
    summary["classes"]  # E: Value of type "DatasetSummary" is not indexable
    summary.classes[0].cont  # E: "ClassCount" has no attribute "cont"; maybe "count"?
    summary.records = 3  # E: Property "records" defined in "DatasetSummary" is read-only
    summary.fields[0].from_  # E: "FieldStats" has no attribute "from_"
