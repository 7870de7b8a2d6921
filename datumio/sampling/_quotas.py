"""Class index building, target proportions and exact per-epoch quotas.

The class index of ``N`` labels over ``C`` classes is the pair ``(class_offsets, class_ids)``:
``class_ids[class_offsets[c]:class_offsets[c + 1]]`` are the record ids of class ``c`` in
ascending order (the same layout a datumio dataset stores under ``index/``).

Building it is one O(N) pass. ``np.argsort(kind="stable")`` is a radix sort for integer
dtypes of 16 bits or less (and timsort for wider ones), so labels are cast to ``uint16``
first; above 65,536 classes the sort is a two-digit LSD radix sort (low 16 bits, then high
16 bits, each a stable radix pass), still O(N).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from datumio.errors import FormatError, OptionError

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

_UINT16_CLASSES = 1 << 16


def check_labels(labels: npt.ArrayLike, name: str) -> npt.NDArray[np.integer]:
    """Return ``labels`` as a 1-D integer array (no copy when it already is one).

    Args:
        labels: the labels (or groups) array.
        name: the parameter name used in error messages.

    Raises:
        OptionError: not 1-D, not integers, or empty.
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise OptionError(f"{name} must be a 1-D array, got shape {arr.shape}; pass one per record")
    if not np.issubdtype(arr.dtype, np.integer):
        raise OptionError(
            f"{name} must hold integers, got dtype {arr.dtype}; map label names to ids first "
            "(resample_data does that for arbitrary label values)"
        )
    if arr.size == 0:
        raise OptionError(f"{name} is empty; a sampler needs at least one record")
    return arr


def count_classes(labels: npt.NDArray[np.integer], num_classes: int | None, name: str) -> I64:
    """Return per-class record counts (one bincount pass).

    Raises:
        OptionError: a negative label, or a label ``>= num_classes``.
    """
    low = int(labels.min())
    if low < 0:
        raise OptionError(f"{name} must be non-negative class ids, found {low}")
    high = int(labels.max())
    if num_classes is not None and high >= num_classes:
        raise OptionError(f"{name} holds class {high} but num_classes is {num_classes}")
    minlength = high + 1 if num_classes is None else num_classes
    return np.bincount(labels, minlength=minlength).astype(np.int64)


def build_class_index(labels: npt.NDArray[np.integer], counts: I64) -> tuple[I64, I64]:
    """Group record ids by class in O(N) with a stable radix sort.

    Args:
        labels: 1-D non-negative integer labels (checked by :func:`count_classes`).
        counts: per-class counts from :func:`count_classes`.

    Returns:
        ``(class_offsets, class_ids)``: int64 arrays of length ``C + 1`` and ``N``.
    """
    offsets = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    if counts.size <= _UINT16_CLASSES:
        ids = np.argsort(labels.astype(np.uint16), kind="stable")
    else:
        low_digit = (labels & 0xFFFF).astype(np.uint16)
        order = np.argsort(low_digit, kind="stable")
        del low_digit
        high_digit = (labels[order] >> 16).astype(np.uint16)
        ids = order[np.argsort(high_digit, kind="stable")]
    return offsets, ids.astype(np.int64, copy=False)


def target_weights(
    counts: I64,
    mode: str,
    weights: Mapping[int, float] | None,
    power: float | None,
) -> F64:
    """Return unnormalised target proportions per class; empty classes get 0.

    Classes with no records are skipped; a ``UserWarning`` names them when the mode would
    have given them draws (``balanced``, ``power <= 0``, or a positive ``weights`` entry).

    Raises:
        OptionError: no class with records has a positive target.
    """
    num = counts.size
    present = counts > 0
    if mode == "natural":
        raw = counts.astype(np.float64)
    elif mode == "balanced":
        raw = np.ones(num, dtype=np.float64)
    elif mode == "power":
        exponent = 1.0 if power is None else float(power)
        with np.errstate(divide="ignore"):
            raw = np.where(present, counts.astype(np.float64) ** exponent, 0.0)
        if exponent <= 0:
            raw = np.where(present, raw, 1.0)
    else:
        raw = np.zeros(num, dtype=np.float64)
        outside = []
        for cls, w in (weights or {}).items():
            if 0 <= cls < num:
                raw[cls] = w
            elif w > 0:
                outside.append(cls)
        if outside:
            warnings.warn(
                f"weights name classes with no records {sorted(outside)[:10]}; they are skipped",
                UserWarning,
                stacklevel=4,
            )
    skipped = np.flatnonzero(~present & (raw > 0))
    if skipped.size:
        warnings.warn(
            f"{skipped.size} class(es) have no records and are skipped: "
            f"{skipped[:10].tolist()}{' ...' if skipped.size > 10 else ''}",
            UserWarning,
            stacklevel=4,
        )
    raw = np.where(present, raw, 0.0)
    if not np.any(raw > 0):
        raise OptionError(
            "no class with records has a positive target weight; give weights= a positive "
            "value for at least one class that occurs in the labels"
        )
    return raw


def largest_remainder_quotas(raw: F64, total: int) -> I64:
    """Split ``total`` draws over classes in proportion to ``raw``, exactly.

    Each class gets ``floor(total * p_c)``; the remaining draws go one each to the classes
    with the largest fractional parts (ties to the lower class id). The result sums to
    ``total`` and differs from ``total * p_c`` by less than 1 for every class.
    """
    if np.all(raw == np.floor(raw)) and float(raw.sum()) * total < 2**62:
        # Integral weights (counts, balanced, integer ``weights=``): exact integers, so
        # equal fractional parts tie exactly and go to the lower class id. In floats,
        # total * w / W carries rounding noise that breaks such ties either way.
        weights = raw.astype(np.int64)
        scaled = weights * total
        quotas = scaled // int(weights.sum())
        frac = np.where(weights > 0, scaled % int(weights.sum()), -1)  # fraction x sum(w)
    else:
        share = raw / raw.sum() * total
        quotas = np.floor(share).astype(np.int64)
        frac = np.where(raw > 0, share - quotas, -1.0)  # never round a zero-weight class up
    remainder = total - int(quotas.sum())
    if remainder > 0:
        order = np.argsort(-frac, kind="stable")
        quotas[order[:remainder]] += 1
    elif remainder < 0:  # only through float rounding: take back from the smallest parts
        order = np.argsort(np.where(quotas > 0, frac, np.inf), kind="stable")
        quotas[order[:-remainder]] -= 1
    return quotas


def check_drawn(ids: I64, classes: I64, labels: npt.NDArray[np.integer]) -> None:
    """Every id drawn from class ``c``'s part of a stored class index has label ``c``.

    A damaged index would otherwise move records between classes silently (the balance
    would be wrong without a word); the cost is one gather of the drawn labels.

    Raises:
        FormatError: naming the first id out of range or listed under the wrong class.
    """
    n = labels.shape[0]
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= n):
        bad = int(ids[(ids < 0) | (ids >= n)][0])
        raise FormatError(
            f"the class index (class_ids) lists record id {bad}, outside 0..{n - 1}: the "
            "dataset's index is damaged (run datumio verify)"
        )
    got = np.asarray(labels[ids])
    wrong = np.flatnonzero(got != classes)
    if wrong.size:
        k = int(wrong[0])
        raise FormatError(
            f"the class index (class_ids) lists record {int(ids[k])} under class "
            f"{int(classes[k])}, but its label is {int(got[k])}: the dataset's index is damaged "
            "(run datumio verify)"
        )
