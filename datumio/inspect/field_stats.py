"""The statistics of one record field, as typed values (the summary's ``fields`` entries).

:func:`datumio.inspect.fields.field_statistics` builds a :class:`FieldStats` per field;
``values`` holds what its type adds (:data:`FieldValues`, one class per type). The JSON of
an entry (:meth:`FieldStats.to_json`) writes the attributes in the order declared here,
then the keys of ``values``; ``docs/inspect.md`` lists them. Pairs such as
``(value, records)`` are tuples here and ``[value, records]`` lists in JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from datumio.inspect._json import dataclass_json, inlined, omitted_when, renamed

#: ``(bucket, count)`` over fixed buckets, all listed.
Histogram = tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class IntValues:
    """An ``int`` field, counted from its global index."""

    #: ``(value, records)``, the most frequent first (ties by value), 10 at most.
    top: tuple[tuple[int, int], ...]
    distinct: int
    min: int | None
    max: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelValues:
    """A ``multilabel`` field, counted from its global index."""

    #: ``(label, records)``: the label's name (its id without a vocabulary).
    top: tuple[tuple[str | int, int], ...]
    distinct: int
    #: Records with no label (lacking the field, or an empty list).
    no_labels: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FloatValues:
    """A ``float`` field: its finite values, and how many were not finite."""

    min: float | None
    mean: float | None
    max: float | None
    non_finite: int = field(default=0, metadata=omitted_when(0))


@dataclass(frozen=True, slots=True, kw_only=True)
class LengthRange:
    """Fewest and most elements of an ``array`` value."""

    min: int
    max: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ArrayValues(FloatValues):
    """An ``array`` field: min, mean and max over all its (finite) elements, and the
    fewest and most elements of a value (``length``, None when no record was read)."""

    length: LengthRange | None


@dataclass(frozen=True, slots=True, kw_only=True)
class NumberSpan:
    """Min, mean and max of some numbers (None when there were none)."""

    min: float | None
    mean: float | None
    max: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LengthValues:
    """A ``text`` or ``bytes`` field: lengths in characters or bytes."""

    length: NumberSpan


@dataclass(frozen=True, slots=True, kw_only=True)
class BoxesPerImage:
    mean: float | None
    max: int | None
    #: Images by box count: ``0``, ``1``, ``2-3``, ``4-7`` ... ``64+``.
    histogram: Histogram


@dataclass(frozen=True, slots=True, kw_only=True)
class BoxAreas:
    """Box area as a fraction of its image's."""

    mean: float | None
    #: Boxes by area: ``<0.1%``, ``0.1-1%``, ``1-10%``, ``10-50%``, ``>=50%``.
    histogram: Histogram


@dataclass(frozen=True, slots=True, kw_only=True)
class BoxValues:
    """A ``boxes`` field."""

    boxes: int
    per_image: BoxesPerImage
    area: BoxAreas
    #: ``(class, boxes)``, the most frequent first; None for boxes without a class.
    classes: tuple[tuple[int, int], ...] | None = field(default=None, metadata=omitted_when(None))


@dataclass(frozen=True, slots=True, kw_only=True)
class KeypointValues:
    """A ``keypoints`` field."""

    points: int
    per_record_max: int
    #: The share of points that are labelled (visibility > 0).
    visible_fraction: float
    #: ``(visibility, points)`` by visibility value.
    visibility: tuple[tuple[int | float, int], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class MaskValues:
    """A ``mask`` field: each label value's share of the pixels of the masks read."""

    pixels: int
    #: ``(label value, share)``, shares as fractions of 1.
    pixel_share: tuple[tuple[int, float], ...]


FieldValues = (
    IntValues
    | LabelValues
    | FloatValues
    | ArrayValues
    | LengthValues
    | BoxValues
    | KeypointValues
    | MaskValues
)


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldStats:
    """One field's statistics.

    Attributes:
        name, type, dtype: the field's spec.
        records: records having the field (all records, from the manifest).
        per_record: values per record (boxes, keypoints, multilabel and array fields).
        counted_from: ``"index"`` (int and multilabel: the global index, no record read) or
            ``"records"`` (JSON ``from``).
        records_read: 0 from the index; else the records read (a sample when fewer than
            the dataset has).
        unreadable: records of the sample whose fields could not be read.
        seen: read from records: those of them having the field (None from the index).
        values: what the type adds; None for a type this version has no statistics for.
    """

    name: str
    type: str
    dtype: str
    records: int
    per_record: float | None = field(default=None, metadata=omitted_when(None))
    counted_from: Literal["index", "records"] = field(metadata=renamed("from"))
    records_read: int
    unreadable: int = field(default=0, metadata=omitted_when(0))
    seen: int | None = field(default=None, metadata=omitted_when(None))
    values: FieldValues | None = field(metadata=inlined())

    def to_json(self) -> dict[str, Any]:
        """The field's entry of the summary JSON (``fields``)."""
        return dataclass_json(self)
