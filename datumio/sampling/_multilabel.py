"""Balancing records that carry several labels: each record counts as its rarest label.

A multi-label record (tags, the classes present in a detection image) belongs to several
classes at once, so quotas cannot be per record *and* per class exactly. The rule used here
is the usual one for long-tailed multi-label data: a record is drawn as a member of the
rarest of its labels (fewest records carry it; ties to the lower id), so records holding a
rare label are drawn at that label's rate, and common labels ride along with them. Records
with no label form one more group, ``num_labels``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from datumio.errors import OptionError


def rarest_label(
    offsets: npt.ArrayLike, values: npt.ArrayLike, num_labels: int
) -> npt.NDArray[np.int64]:
    """The group of every record: its rarest label, or ``num_labels`` when it has none.

    Args:
        offsets: ``[N + 1]`` record i's labels are ``values[offsets[i]:offsets[i + 1]]``.
        values: label ids in ``[0, num_labels)``.
        num_labels: size of the label vocabulary.

    Raises:
        OptionError: offsets not ascending from 0 to ``len(values)``, or an id out of range.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    values = np.asarray(values, dtype=np.int64)
    if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != values.size:
        raise OptionError("multilabel offsets must run from 0 to the number of values")
    if np.any(np.diff(offsets) < 0):
        raise OptionError("multilabel offsets must not decrease")
    if values.size and (values.min() < 0 or values.max() >= num_labels):
        raise OptionError(f"multilabel ids must lie in [0, {num_labels})")
    n = offsets.size - 1
    out = np.full(n, num_labels, dtype=np.int64)
    if values.size == 0:
        return out
    counts = np.bincount(values, minlength=num_labels)
    key = counts[values] * (num_labels + 1) + values  # fewest records first, then lower id
    has = np.flatnonzero(np.diff(offsets) > 0)
    out[has] = np.minimum.reduceat(key, offsets[has]) % (num_labels + 1)
    return out
