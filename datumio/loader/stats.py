"""Counters of a loader run (a dataclass that also reads like a dict)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class LoaderStats:
    """What the loader has done so far; ``stats["replaced"]`` and ``stats.replaced`` agree."""

    batches: int = 0
    samples: int = 0
    #: Records that failed to read or decode and were replaced by one of the same class.
    replaced: int = 0
    #: failed record id -> times replaced.
    replaced_ids: dict[int, int] = field(default_factory=dict)
    worker_restarts: int = 0
    #: Seconds from the first ``next()`` of the loader's life to its first batch.
    first_batch_s: float | None = None
    #: Seconds the main process spent inside the loader (planning, waiting, handing out).
    main_s: float = 0.0
    #: Of which waiting for workers.
    wait_s: float = 0.0
    #: JPEGs decoded in part (``datumio.augment.jpeg_roi``): random-resized crops at full
    #: DCT scale (less than twice the output on a side) decoded as the crop alone, and the
    #: affine recipe's images decoded as the part its warp samples...
    jpeg_regions: int = 0
    #: ... and decoded whole (no region decoder here, or a JPEG it does not take).
    jpeg_whole: int = 0

    def __getitem__(self, name: str) -> Any:
        if name not in {f.name for f in fields(self)}:
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(f.name for f in fields(self))

    def keys(self) -> list[str]:
        return [f.name for f in fields(self)]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def main_ms_per_batch(self) -> float:
        """Main-process milliseconds per batch outside waiting for workers."""
        return 1000.0 * (self.main_s - self.wait_s) / max(self.batches, 1)
