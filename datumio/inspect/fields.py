"""Statistics of a dataset's record fields, for ``datumio inspect`` (the summary's ``fields``).

An int or multilabel field is counted whole from its global index (memory-mapped, no record
read). The other types are read from the records: all of them, or a seeded sample of
``sample`` records (:func:`sample_ids`) when there are more; each entry says which
(``from``: ``"index"`` or ``"records"``, ``records_read``).

Each field gets a :class:`~datumio.inspect.field_stats.FieldStats` (its ``to_json()`` is the
summary's JSON entry). Every entry has ``name``, ``type``, ``dtype`` and ``records`` (records
having the field, from the manifest); boxes, keypoints, multilabel and array fields
``per_record`` (values per record, all records, from the manifest). Then, by type, in
``values`` (``seen``: sampled records having the field; shares are fractions of 1, rounded to
6 places)::

    int         top [[value, records]] (10 most frequent), distinct, min, max
    multilabel  top [[label, records]] (10), distinct, no_labels (records with none)
    float       min, mean, max (finite values; non_finite counted when there are any)
    array       min, mean, max over all elements, length {min, max}
    text/bytes  length {min, mean, max} (characters / bytes)
    boxes       boxes, per_image {mean, max, histogram}, area {mean, histogram}, classes
    keypoints   points, per_record_max, visible_fraction (v > 0), visibility [[v, points]]
    mask        pixels, pixel_share [[label value, share of the pixels]]

Histograms are ``[[bucket, count], ...]`` over fixed buckets (:data:`BOX_COUNT_BUCKETS`,
:data:`AREA_BUCKETS`), so two datasets compare bucket by bucket.
"""

from __future__ import annotations

import base64
import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import numpy as np

from datumio.errors import DatumioError
from datumio.fields.spec import FieldSpec
from datumio.inspect.field_stats import (
    ArrayValues,
    BoxAreas,
    BoxesPerImage,
    BoxValues,
    FieldStats,
    FieldValues,
    FloatValues,
    Histogram,
    IntValues,
    KeypointValues,
    LabelValues,
    LengthRange,
    LengthValues,
    MaskValues,
    NumberSpan,
)
from datumio.shards import format as fmt
from datumio.shards.dataset import Dataset

#: How many records the statistics of the non-indexed fields read at most (``--field-sample``).
DEFAULT_FIELD_SAMPLE = 1000
#: How many of the most frequent values (int, labels, box classes) an entry names.
MAX_TOP = 10
#: Boxes per image: lower bounds of the buckets (the last is open).
BOX_COUNT_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64)
#: Box area as a fraction of its image's area: upper bounds of the buckets but the last.
AREA_BUCKETS = (0.001, 0.01, 0.1, 0.5)
AREA_LABELS = ("<0.1%", "0.1-1%", "1-10%", "10-50%", ">=50%")

#: Field types counted whole from their global index, without reading a record.
_FROM_INDEX = ("int", "multilabel")
#: Field types whose entry gives ``per_record`` (values per record).
_PER_RECORD = ("boxes", "keypoints", "multilabel", "array")

Progress = Callable[[int, int], None]
_Key = TypeVar("_Key")


def sample_ids(num_records: int, sample: int, seed: int = 0) -> np.ndarray:
    """The records the statistics read: all when ``num_records <= sample``, else ``sample``
    of them drawn without replacement by ``numpy.random.default_rng(seed)``; in id order."""
    if sample < 1:
        raise ValueError(f"sample must be >= 1 record, got {sample}")
    if num_records <= sample:
        return np.arange(num_records, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(num_records, sample, replace=False))


def field_statistics(
    ds: Dataset,
    *,
    sample: int = DEFAULT_FIELD_SAMPLE,
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[FieldStats, ...]:
    """One :class:`~datumio.inspect.field_stats.FieldStats` per field, in the manifest's order
    (see the module docstring).

    Args:
        ds: an open dataset.
        sample: records read at most for the fields without a global index.
        seed: chooses the sample when there are more records.
        progress: called as ``progress(done, total)`` while records are read.
    """
    read = [spec for spec in ds.fields.values() if spec.type not in _FROM_INDEX]
    ids = sample_ids(len(ds), sample, seed) if read else np.zeros(0, np.int64)
    tallies = {spec.name: _Tally(spec) for spec in read}
    unreadable = 0
    for done, i in enumerate(ids.tolist(), 1):
        try:
            values = {spec.name: ds.field(i, spec.name) for spec in read}
        except DatumioError:
            unreadable += 1
        else:
            h, w, _ = ds.shape(i)
            for name, value in values.items():
                if value is not None:
                    tallies[name].add(value, h * w)
        if progress is not None:
            progress(done, int(ids.size))
    records_read = int(ids.size) - unreadable
    return tuple(
        _entry(ds, spec, tallies.get(spec.name), records_read, unreadable)
        for spec in ds.fields.values()
    )


def _entry(
    ds: Dataset, spec: FieldSpec, tally: _Tally | None, records_read: int, unreadable: int
) -> FieldStats:
    """The statistics of ``spec``: from its global index, or from ``tally``'s records."""
    counted_from: Literal["index", "records"] = "records"
    values: FieldValues | None
    if tally is None:
        index = ds.field_index(spec.name)
        if spec.type == "int":
            values = _int_values(np.asarray(index))
        else:
            values = _label_values(spec, index, len(ds))
        counted_from, records_read, unreadable = "index", 0, 0
    else:
        values = tally.values()
    return FieldStats(
        name=spec.name,
        type=spec.type,
        dtype=spec.dtype,
        records=spec.records,
        per_record=_per_record(spec, len(ds)),
        counted_from=counted_from,
        records_read=records_read,
        unreadable=unreadable,
        seen=None if tally is None else tally.seen,
        values=values,
    )


def _per_record(spec: FieldSpec, num_records: int) -> float | None:
    """Values per record of a field of the types that have several; None for the others."""
    if spec.type not in _PER_RECORD:
        return None
    return round(spec.items / num_records, 4) if num_records else 0.0


def _share(part: float, whole: float) -> float:
    return round(part / whole, 6) if whole else 0.0


def _num(value: float) -> float:
    return round(float(value), 6)


def _top(counts: Counter[_Key]) -> tuple[tuple[_Key, int], ...]:
    """The most frequent values, most first, ties by value."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple((key, int(n)) for key, n in ranked[:MAX_TOP])


def _int_values(values: np.ndarray) -> IntValues:
    present = values[values != fmt.INT_ABSENT]
    uniq, counts = np.unique(present, return_counts=True)
    return IntValues(
        top=_top(Counter(dict(zip(uniq.tolist(), counts.tolist(), strict=True)))),
        distinct=int(uniq.size),
        min=int(present.min()) if present.size else None,
        max=int(present.max()) if present.size else None,
    )


def _label_values(spec: FieldSpec, index: Any, num_records: int) -> LabelValues:
    offsets, ids = index
    counts = np.bincount(np.asarray(ids, dtype=np.int64), minlength=spec.length or 0)
    vocab = spec.vocabulary
    used = np.flatnonzero(counts)
    named: Counter[str | int] = Counter(
        {vocab[k] if vocab is not None else int(k): int(counts[k]) for k in used}
    )
    # Ties in vocabulary (id) order, as the labels are numbered.
    order = {key: k for k, key in enumerate(named)}
    ranked = sorted(named.items(), key=lambda kv: (-kv[1], order[kv[0]]))[:MAX_TOP]
    per_record = np.diff(np.asarray(offsets, dtype=np.int64))
    return LabelValues(
        top=tuple(ranked),
        distinct=int(used.size),
        no_labels=int(np.count_nonzero(per_record == 0)) if num_records else 0,
    )


def _span(values: Sequence[float] | np.ndarray) -> NumberSpan:
    arr = np.asarray(values, dtype=np.float64)
    if not arr.size:
        return NumberSpan(min=None, mean=None, max=None)
    return NumberSpan(min=_num(arr.min()), mean=_num(arr.mean()), max=_num(arr.max()))


def _buckets(values: np.ndarray, edges: Sequence[float], labels: Sequence[str]) -> Histogram:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(labels))
    return tuple((label, int(n)) for label, n in zip(labels, counts.tolist(), strict=True))


def _count_labels() -> list[str]:
    b = BOX_COUNT_BUCKETS
    labels = [str(lo) if hi - lo == 1 else f"{lo}-{hi - 1}" for lo, hi in itertools.pairwise(b)]
    return [*labels, f"{b[-1]}+"]


class _Tally:
    """What the sampled values of one field add up to."""

    def __init__(self, spec: FieldSpec) -> None:
        self.spec = spec
        self.seen = 0
        self.values_read: list[float] = []  # float values, text/bytes lengths
        self.arrays: list[np.ndarray] = []
        self.lengths: list[int] = []  # array lengths; boxes / keypoints per record
        self.areas: list[np.ndarray] = []
        self.classes: Counter[int] = Counter()
        self.visibility: Counter[float] = Counter()
        self.pixels = np.zeros(256, np.int64)

    def add(self, value: Any, image_pixels: int) -> None:
        self.seen += 1
        kind = self.spec.type
        if kind == "float":
            self.values_read.append(float(value))
        elif kind in ("text", "bytes"):
            self.values_read.append(len(value))
        elif kind == "array":
            self.arrays.append(np.asarray(value, dtype=np.float64))
            self.lengths.append(int(np.size(value)))
        elif kind == "boxes":
            boxes = np.asarray(value.boxes, dtype=np.float64)
            self.lengths.append(len(boxes))
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            self.areas.append(area / max(image_pixels, 1))
            if value.classes is not None:
                self.classes.update(int(c) for c in value.classes)
        elif kind == "keypoints":
            kps = np.asarray(value, dtype=np.float64).reshape(-1, 3)
            self.lengths.append(len(kps))
            self.visibility.update(float(v) for v in kps[:, 2])
        elif kind == "mask":
            self.pixels += np.bincount(np.asarray(value).ravel(), minlength=256)[:256]

    def values(self) -> FieldValues | None:
        """What the field's type adds; None for a type without statistics."""
        kind = self.spec.type
        if kind in ("text", "bytes"):
            return LengthValues(length=_span(self.values_read))
        results: dict[str, Callable[[], FieldValues]] = {
            "float": self._floats,
            "array": self._arrays,
            "boxes": self._boxes,
            "keypoints": self._keypoints,
            "mask": self._masks,
        }
        result = results.get(kind)
        return None if result is None else result()

    def _floats(self) -> FloatValues:
        arr = np.asarray(self.values_read, dtype=np.float64)
        finite = arr[np.isfinite(arr)]
        span = _span(finite)
        return FloatValues(
            min=span.min, mean=span.mean, max=span.max, non_finite=int(arr.size - finite.size)
        )

    def _arrays(self) -> ArrayValues:
        flat = np.concatenate([np.zeros(0), *self.arrays])
        finite = flat[np.isfinite(flat)]
        span = _span(finite)
        lengths = self.lengths
        return ArrayValues(
            min=span.min,
            mean=span.mean,
            max=span.max,
            non_finite=int(flat.size - finite.size),
            length=LengthRange(min=min(lengths), max=max(lengths)) if lengths else None,
        )

    def _boxes(self) -> BoxValues:
        per = np.asarray(self.lengths, dtype=np.int64)
        areas = np.concatenate([np.zeros(0), *self.areas])
        return BoxValues(
            boxes=int(per.sum()),
            per_image=BoxesPerImage(
                mean=_num(per.mean()) if per.size else None,
                max=int(per.max()) if per.size else None,
                histogram=_buckets(per, BOX_COUNT_BUCKETS[1:], _count_labels()),
            ),
            area=BoxAreas(
                mean=_num(areas.mean()) if areas.size else None,
                histogram=_buckets(areas, AREA_BUCKETS, AREA_LABELS),
            ),
            classes=_top(self.classes) if self.spec.length == 5 else None,
        )

    def _keypoints(self) -> KeypointValues:
        total = sum(self.visibility.values())
        labelled = sum(n for v, n in self.visibility.items() if v > 0)
        ranked = sorted(self.visibility.items())[:MAX_TOP]
        return KeypointValues(
            points=total,
            per_record_max=max(self.lengths, default=0),
            visible_fraction=_share(labelled, total),
            visibility=tuple((int(v) if v.is_integer() else v, n) for v, n in ranked),
        )

    def _masks(self) -> MaskValues:
        total = int(self.pixels.sum())
        return MaskValues(
            pixels=total,
            pixel_share=tuple(
                (int(v), _share(int(self.pixels[v]), total)) for v in np.flatnonzero(self.pixels)
            ),
        )


def _finite(value: float) -> float | str:
    """A float for JSON: ``nan`` and ``inf`` as text (JSON has no such numbers)."""
    return round(value, 4) if np.isfinite(value) else str(value)


def field_json(spec: FieldSpec, value: Any) -> Any:
    """A decoded field value as JSON: numbers, text, lists; bytes as base64; boxes as
    ``{"boxes": [[x0, y0, x1, y1]], "classes": [...] or null}``; a multilabel field's names
    (ids without a vocabulary); a mask as ``{"shape": [h, w], "values": [[label, pixels]]}``."""
    if value is None:
        return None
    kind = spec.type
    if kind in ("int", "text"):
        return value
    if kind == "float":
        return _finite(float(value))
    if kind == "bytes":
        return base64.b64encode(value).decode("ascii")
    if kind == "multilabel":
        vocab = spec.vocabulary
        return [vocab[k] if vocab is not None else int(k) for k in np.asarray(value).tolist()]
    if kind == "boxes":
        classes = None if value.classes is None else [int(c) for c in value.classes]
        rows = [[_finite(float(x)) for x in row] for row in value.boxes]
        return {"boxes": rows, "classes": classes}
    if kind == "mask":
        labels, counts = np.unique(np.asarray(value), return_counts=True)
        pairs = zip(labels.tolist(), counts.tolist(), strict=True)
        return {"shape": list(np.shape(value)), "values": [[int(v), int(n)] for v, n in pairs]}
    arr = np.asarray(value)  # array, keypoints
    if arr.dtype.kind in "iu":
        return arr.tolist()
    return (
        [[_finite(float(x)) for x in row] for row in arr]
        if arr.ndim == 2
        else [_finite(float(x)) for x in arr]
    )
