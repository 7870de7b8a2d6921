"""What a sampler will show the model in one epoch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class SamplingPlan:
    """Per-class summary of one epoch (the same for every epoch of a sampler).

    Counts are over the whole epoch plan (all ranks); with ``pad=False`` the last
    ``epoch_size % world_size`` positions of the plan are dropped, so the ranks together see
    up to ``world_size - 1`` fewer draws.

    Attributes:
        mode: the sampling mode.
        epoch_size: draws per epoch over all ranks.
        rank_size: draws per epoch on each rank (``len(sampler)``).
        world_size: number of ranks.
        num_records: records in the dataset.
        class_counts: records per class ``n_c`` (int64, one per class).
        draws: draws per class per epoch ``q_c`` (int64, exact).
        unique: distinct records of each class drawn per epoch, ``min(q_c, n_c)``.
        mean_repeats: mean draws per record of each class, ``q_c / n_c`` (0 for empty classes);
            every record is drawn ``floor`` or ``ceil`` of it.
        fraction_seen: distinct records drawn per epoch over ``num_records``.
    """

    mode: str
    epoch_size: int
    rank_size: int
    world_size: int
    num_records: int
    class_counts: npt.NDArray[np.int64]
    draws: npt.NDArray[np.int64]
    unique: npt.NDArray[np.int64]
    mean_repeats: npt.NDArray[np.float64]
    fraction_seen: float

    @classmethod
    def from_quotas(
        cls,
        *,
        mode: str,
        counts: npt.NDArray[np.int64],
        draws: npt.NDArray[np.int64],
        rank_size: int,
        world_size: int,
    ) -> SamplingPlan:
        """Build the plan from class counts and quotas."""
        unique = np.minimum(draws, counts)
        safe = np.maximum(counts, 1)
        repeats = np.where(counts > 0, draws / safe, 0.0)
        num_records = int(counts.sum())
        return cls(
            mode=mode,
            epoch_size=int(draws.sum()),
            rank_size=rank_size,
            world_size=world_size,
            num_records=num_records,
            class_counts=counts,
            draws=draws,
            unique=unique,
            mean_repeats=repeats,
            fraction_seen=float(unique.sum()) / max(num_records, 1),
        )

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-safe dict (arrays as lists of Python numbers)."""
        return {
            "mode": self.mode,
            "epoch_size": self.epoch_size,
            "rank_size": self.rank_size,
            "world_size": self.world_size,
            "num_records": self.num_records,
            "class_counts": self.class_counts.tolist(),
            "draws": self.draws.tolist(),
            "unique": self.unique.tolist(),
            "mean_repeats": self.mean_repeats.tolist(),
            "fraction_seen": self.fraction_seen,
        }
