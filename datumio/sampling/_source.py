"""Turn what the user passes (labels, a dataset, groups) into counts and a class index."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from datumio.errors import OptionError
from datumio.sampling._class_index import ClassIndex
from datumio.sampling._quotas import I64, build_class_index, check_labels, count_classes


@dataclass
class ClassSource:
    """The records a sampler balances over.

    Either ``labels`` is set (a raw array: counts and index are built on demand, one O(N)
    pass each) or ``offsets``/``class_ids`` come from a dataset's stored index (memory-mapped,
    used as is, so nothing is O(N)).
    """

    num_records: int
    labels: npt.NDArray[np.integer] | None
    num_classes: int | None
    offsets: I64 | None = None
    class_ids: I64 | None = None
    _counts: I64 | None = None
    #: The class index came from a dataset beside its labels (so the two may disagree if
    #: the dataset is damaged), rather than being built from the labels here.
    stored_index: bool = False
    #: The dataset's class names (``weights=`` may name classes); None for a labels array.
    class_names: tuple[str, ...] | None = None

    @property
    def counts(self) -> I64:
        """Records per class (computed once from the labels when there is no stored index)."""
        counts = self._counts
        if counts is None:
            if self.offsets is not None:
                counts = np.diff(np.asarray(self.offsets)).astype(np.int64)
            elif self.labels is not None:
                counts = count_classes(self.labels, self.num_classes, "labels")
            else:  # unreachable: resolve_source always sets one of them
                raise OptionError("a sampler needs labels or a class index")
            self._counts = counts
        return counts

    def ensure_index(self) -> tuple[I64, I64]:
        """Return ``(class_offsets, class_ids)``, building them in O(N) if needed."""
        if self.offsets is None or self.class_ids is None:
            if self.labels is None:
                raise OptionError("a sampler needs labels or class_offsets/class_ids")
            self.offsets, self.class_ids = build_class_index(self.labels, self.counts)
        return self.offsets, self.class_ids


def _optional_int(value: object, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise OptionError(f"dataset.{name} must be an int, got {value!r}") from None


def resolve_source(
    labels_or_dataset: npt.ArrayLike | ClassIndex, groups: npt.ArrayLike | None
) -> ClassSource:
    """Return the :class:`ClassSource` for a labels array or a dataset, or for ``groups``.

    A dataset (:class:`ClassIndex`) is any object with a ``labels`` attribute; if it also has
    ``class_offsets`` (int64, C + 1) and ``class_ids`` (int64, N) they are used instead of
    grouping the labels.

    Raises:
        OptionError: malformed labels, groups or stored index.
    """
    is_dataset = hasattr(labels_or_dataset, "labels") and not isinstance(
        labels_or_dataset, np.ndarray
    )
    if is_dataset:
        raw_labels = getattr(labels_or_dataset, "labels", None)
        offsets = getattr(labels_or_dataset, "class_offsets", None)
        class_ids = getattr(labels_or_dataset, "class_ids", None)
        num_classes = _optional_int(getattr(labels_or_dataset, "num_classes", None), "num_classes")
        names = getattr(labels_or_dataset, "class_names", None)
        class_names = None if names is None else tuple(str(n) for n in names)
    else:
        raw_labels, offsets, class_ids, num_classes = labels_or_dataset, None, None, None
        class_names = None
    labels = None if raw_labels is None else check_labels(raw_labels, "labels")
    if groups is not None:
        group_arr = check_labels(groups, "groups")
        if labels is not None and group_arr.shape[0] != labels.shape[0]:
            raise OptionError(
                f"groups has {group_arr.shape[0]} entries but there are {labels.shape[0]} "
                "records; pass one group id per record"
            )
        return ClassSource(num_records=int(group_arr.shape[0]), labels=group_arr, num_classes=None)
    if offsets is not None and class_ids is not None:
        offsets = np.asarray(offsets)
        class_ids = np.asarray(class_ids)
        if offsets.ndim != 1 or offsets.size < 2 or int(offsets[0]) != 0:
            raise OptionError(
                "dataset.class_offsets must be 1-D, start at 0 and have C + 1 entries"
            )
        if int(offsets[-1]) != class_ids.shape[0]:
            raise OptionError(
                f"dataset.class_offsets ends at {int(offsets[-1])} but class_ids has "
                f"{class_ids.shape[0]} entries"
            )
        if labels is not None and labels.shape[0] != class_ids.shape[0]:
            raise OptionError(
                f"dataset.labels has {labels.shape[0]} entries but class_ids has "
                f"{class_ids.shape[0]}"
            )
        return ClassSource(
            num_records=int(class_ids.shape[0]),
            labels=labels,
            num_classes=offsets.size - 1,
            offsets=offsets,
            class_ids=class_ids,
            stored_index=True,
            class_names=class_names,
        )
    if labels is None:
        raise OptionError(
            "the dataset has no labels; pass a labels array, groups=, or a dataset with "
            "class_offsets/class_ids"
        )
    return ClassSource(
        num_records=int(labels.shape[0]),
        labels=labels,
        num_classes=num_classes,
        class_names=class_names,
    )
