"""The result of an ingest run, as data (the tools render it as text or JSON)."""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any

import numpy as np

from datumio.ingest.sources import Reject, utf8_text
from datumio.shards.manifest import Manifest, Stats


def summarise_sizes(sizes: list[tuple[int, int]] | np.ndarray) -> dict[str, Any]:
    """min/max/mean/median of widths, heights and aspect ratios (width / height)."""
    arr = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    if not len(arr):
        return {}
    out: dict[str, Any] = {}
    for name, col in (
        ("width", arr[:, 0]),
        ("height", arr[:, 1]),
        ("aspect", arr[:, 0] / arr[:, 1]),
    ):
        out[name] = {
            "min": round(float(col.min()), 4),
            "max": round(float(col.max()), 4),
            "mean": round(float(col.mean()), 4),
            "median": round(float(np.median(col)), 4),
        }
    return out


@dataclass(frozen=True)
class IngestReport:
    """What an ingest run produced."""

    out: str
    #: The manifest the run wrote (``manifest.to_json()`` is the file's JSON object).
    manifest: Manifest
    rejects: list[Reject]
    files_seen: int
    seconds: float
    #: Shards a ``resume`` found finished and did not redo.
    shards_reused: int = 0

    @property
    def num_records(self) -> int:
        return self.manifest.num_records

    @property
    def images_per_second(self) -> float:
        return self.files_seen / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (the ``--json`` output of ``datumio-ingest``)."""
        m = self.manifest
        stats = m.stats or Stats()
        return {
            "out": utf8_text(self.out),
            "backend": m.backend,
            "encoding": m.encoding,
            "records": m.num_records,
            "files_seen": self.files_seen,
            "classes": dict(zip(m.class_names, m.class_counts, strict=True)),
            "empty_classes": [e.to_json() for e in m.empty_classes],
            "shards": len(m.shards),
            "bytes": sum(s.file_bytes for s in m.shards),
            "rejected": len(self.rejects),
            "rejects_by_reason": dict(collections.Counter(r.reason for r in self.rejects)),
            "rejects_sample": [r.to_dict() for r in self.rejects[:20]],
            "mean": None if stats.mean is None else list(stats.mean),
            "std": None if stats.std is None else list(stats.std),
            "shards_reused": self.shards_reused,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images_per_second, 1),
        }
