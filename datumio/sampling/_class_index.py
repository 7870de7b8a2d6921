"""What a sampler reads from a dataset: the :class:`ClassIndex` protocol."""

from __future__ import annotations

from typing import Protocol

import numpy.typing as npt


class ClassIndex(Protocol):
    """A dataset as a :class:`~datumio.Sampler` sees it: labels and the stored class index.

    :class:`datumio.Dataset` is one (its index is memory-mapped, so nothing is O(N)). At run
    time any object with ``labels`` is accepted and the other attributes are used when
    present: ``class_offsets`` with ``class_ids`` spare grouping the labels (one O(N) pass),
    ``num_classes`` counts trailing classes without records, ``shard_offsets`` is what
    ``locality=`` orders draws by.
    """

    @property
    def labels(self) -> npt.ArrayLike:
        """``[N]`` class id of each record."""

    @property
    def class_offsets(self) -> npt.ArrayLike:
        """``[C + 1]`` int64: class ``c`` owns ``class_ids[off[c]:off[c + 1]]``."""

    @property
    def class_ids(self) -> npt.ArrayLike:
        """``[N]`` int64: record ids grouped by class, ascending within a class."""

    @property
    def num_classes(self) -> int:
        """``C``: the number of classes, counting those without records."""

    @property
    def shard_offsets(self) -> npt.ArrayLike:
        """``[S + 1]``: shard ``s`` holds ids ``off[s] .. off[s + 1] - 1``."""
