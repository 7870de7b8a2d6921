"""What the model will see: a sampler's plan over E epochs and W ranks, per class.

:func:`sampling_report` builds the :class:`~datumio.sampling.Sampler` a training run would
build and reads its :meth:`~datumio.sampling.Sampler.plan` (exact per-epoch quotas). The
numbers that depend on the random draws (distinct records seen after E epochs, the most
draws of one record, per-rank counts) are measured by running the sampler itself when
``epochs * epoch_size`` is at most ``exact_limit`` draws (pure index arithmetic, about a
second per million draws), and otherwise given as expectations (``exact`` is False).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from datumio.errors import OptionError
from datumio.inspect._json import json_value
from datumio.sampling import Sampler, SamplingPlan, resolve_weights

#: Draws (epochs x epoch size) above which per-rank counts and coverage are estimated.
EXACT_DRAWS_LIMIT = 4_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassDraws:
    """What a sampler draws of one class (a row of the report).

    Attributes:
        id, name: the class.
        records: its records.
        draws_per_epoch: exact draws per epoch over all ranks (the sampler's quota).
        share: ``draws_per_epoch`` as a fraction of the epoch.
        repeats_per_epoch: mean draws per record per epoch.
        repeats_range: every record is drawn floor or ceil of it: ``(floor, ceil)``.
        unique_per_epoch: distinct records drawn per epoch.
        seen_after_epochs: distinct records drawn at least once in the epochs (an int
            when measured, else the expected value).
        coverage: ``seen_after_epochs / records`` (None for a class without records).
        max_draws_of_a_record: the most times one record is drawn in the epochs (None
            when not measured or without records).
    """

    id: int
    name: str
    records: int
    draws_per_epoch: int
    share: float
    repeats_per_epoch: float
    repeats_range: tuple[int, int]
    unique_per_epoch: int
    seen_after_epochs: float
    coverage: float | None
    max_draws_of_a_record: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RankDraws:
    """The draws of one rank over all epochs (ints when measured, else expected values)."""

    rank: int
    draws: float
    by_class: tuple[float, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ShardsPerBatch:
    """Distinct shards a batch of ``batch_size`` reads from: mean, fewest and most over
    rank 0's first epoch (at most 1,000 batches), of the dataset's ``shards``."""

    batch_size: int
    shards: int
    mean: float
    min: int
    max: int


@dataclass(frozen=True)
class SamplingReport:
    """A sampler's plan over ``epochs`` epochs and ``world_size`` ranks.

    Read the run from :attr:`plan` (``mode``, ``epoch_size``, ``rank_size``), by class
    (:attr:`by_class`) and by rank (:attr:`by_rank`); :meth:`to_json` is the ``sampling``
    object of ``datumio inspect --json``.

    Attributes:
        plan: the sampler's per-epoch plan (exact quotas, whole epoch, all ranks).
        class_names: one name per class.
        epochs: epochs the report covers.
        seed: the sampler seed used for the measured figures.
        weights: ``{class id: weight}`` in ``weights`` mode, else None.
        power: the exponent in ``power`` mode, else None.
        exact: True when ``per_rank``, ``seen`` and ``max_draws`` were measured.
        per_rank: draws of each class on each rank over all epochs (``[W, C]``).
        seen: distinct records of each class drawn at least once in the epochs (``[C]``).
        max_draws: the most times any one record of each class is drawn in the epochs
            (``[C]``; None when not measured).
        notes: warnings the sampler raised (empty classes skipped, ...).
        shards_per_batch: for a sharded dataset, how scattered a batch's reads are (None
            otherwise).
    """

    plan: SamplingPlan
    class_names: list[str]
    epochs: int
    seed: int
    weights: dict[int, float] | None
    power: float | None
    exact: bool
    per_rank: npt.NDArray[np.float64]
    seen: npt.NDArray[np.float64]
    max_draws: npt.NDArray[np.int64] | None
    notes: list[str] = field(default_factory=list)
    shards_per_batch: ShardsPerBatch | None = None

    @property
    def world_size(self) -> int:
        return self.plan.world_size

    @property
    def dropped_per_epoch(self) -> int:
        """Draws of an epoch that no rank gets (the epoch does not split evenly)."""
        p = self.plan
        return p.epoch_size - p.rank_size * p.world_size

    @property
    def fraction_seen_per_epoch(self) -> float:
        """The share of all records drawn in one epoch (6 places)."""
        return round(self.plan.fraction_seen, 6)

    @property
    def fraction_seen_total(self) -> float:
        """The share of all records drawn in all the epochs (6 places)."""
        return round(float(self.seen.sum()) / max(self.plan.num_records, 1), 6)

    def _count(self, value: float) -> float:
        """A measured count as an int, an expected one to one place."""
        return int(value) if self.exact else round(float(value), 1)

    @property
    def by_class(self) -> tuple[ClassDraws, ...]:
        """One row per class, in class id order."""
        p = self.plan
        rows = []
        for c, name in enumerate(self.class_names):
            n, q = int(p.class_counts[c]), int(p.draws[c])
            rows.append(
                ClassDraws(
                    id=c,
                    name=name,
                    records=n,
                    draws_per_epoch=q,
                    share=round(q / p.epoch_size, 6) if p.epoch_size else 0.0,
                    repeats_per_epoch=round(float(p.mean_repeats[c]), 4),
                    repeats_range=(q // n, -(-q // n)) if n else (0, 0),
                    unique_per_epoch=int(p.unique[c]),
                    seen_after_epochs=self._count(self.seen[c]),
                    coverage=round(float(self.seen[c]) / n, 6) if n else None,
                    max_draws_of_a_record=(
                        None if self.max_draws is None or not n else int(self.max_draws[c])
                    ),
                )
            )
        return tuple(rows)

    @property
    def by_rank(self) -> tuple[RankDraws, ...]:
        """One row per rank: its draws in all the epochs, in all and by class id."""
        return tuple(
            RankDraws(
                rank=r,
                draws=self._count(self.per_rank[r].sum()),
                by_class=tuple(self._count(v) for v in self.per_rank[r]),
            )
            for r in range(self.world_size)
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict: the run, then one entry per class and per rank."""
        p, weights = self.plan, self.weights
        return {
            "mode": p.mode,
            "weights": None if weights is None else {str(k): v for k, v in weights.items()},
            "power": self.power,
            "seed": self.seed,
            "epochs": self.epochs,
            "world_size": p.world_size,
            "epoch_size": p.epoch_size,
            "rank_size": p.rank_size,
            "dropped_per_epoch": self.dropped_per_epoch,
            "exact": self.exact,
            "fraction_seen_per_epoch": self.fraction_seen_per_epoch,
            "fraction_seen_total": self.fraction_seen_total,
            "classes": json_value(self.by_class),
            "per_rank": json_value(self.by_rank),
            "notes": list(self.notes),
            "shards_per_batch": json_value(self.shards_per_batch),
        }

    def to_dict(self) -> dict[str, Any]:
        """The same as :meth:`to_json` (its name in earlier versions)."""
        return self.to_json()


def sampling_report(
    dataset: Any,
    mode: str = "balanced",
    *,
    weights: Mapping[int, float] | None = None,
    power: float | None = None,
    epochs: int = 1,
    world_size: int = 1,
    epoch_size: int | None = None,
    seed: int = 0,
    exact_limit: int = EXACT_DRAWS_LIMIT,
    batch_size: int = 64,
    locality: int = 0,
    lockstep: bool = False,
) -> SamplingReport:
    """Build the sampler a run would use and report what it draws.

    Args:
        dataset: a :class:`~datumio.Dataset` (or any object with ``labels``; ``class_names``
            is used when present).
        mode: ``balanced``, ``natural``, ``weights`` or ``power`` (see ``SamplerOptions``).
        weights: ``{class id: weight}`` for ``weights`` mode.
        power: the exponent for ``power`` mode.
        epochs: number of epochs to report on (>= 1).
        world_size: number of ranks (>= 1).
        epoch_size: draws per epoch over all ranks (default: the number of records).
        seed: sampler seed.
        exact_limit: measure by running the sampler up to this many draws in all.
        batch_size: the batch size of ``shards_per_batch``.
        locality: the sampler's locality order (shards per window; 0: off).
        lockstep: the locality order with every class in the same window at once.

    Raises:
        OptionError: a bad option (from the sampler, or ``epochs``/``world_size`` < 1).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise OptionError(f"epochs must be a positive int, got {epochs!r}")
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise OptionError(f"world_size must be a positive int, got {world_size!r}")
    kwargs: dict[str, Any] = {
        "mode": mode,  # a str checked by SamplerOptions
        "weights": weights if mode == "weights" else None,
        "power": power if mode == "power" else None,
        "epoch_size": epoch_size,
        "seed": seed,
        "world_size": world_size,
        "locality": locality,
        "lockstep": lockstep,
        "batch_size": batch_size if locality else None,
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samplers = [Sampler(dataset, rank=0, **kwargs)]
    notes = list(dict.fromkeys(str(w.message) for w in caught))
    plan = samplers[0].plan()
    labels = np.asarray(dataset.labels) if plan.epoch_size * epochs <= exact_limit else None
    num_classes = plan.class_counts.size
    names = list(getattr(dataset, "class_names", None) or [str(c) for c in range(num_classes)])
    common = {
        "plan": plan,
        "class_names": names,
        "epochs": epochs,
        "seed": seed,
        "weights": None if kwargs["weights"] is None else dict(kwargs["weights"]),
        "power": kwargs["power"],
        "notes": notes,
        "shards_per_batch": _shards_per_batch(dataset, samplers[0], batch_size),
    }
    if labels is None:
        per_rank, seen = _expected(plan, epochs)
        return SamplingReport(**common, exact=False, per_rank=per_rank, seen=seen, max_draws=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # already recorded from rank 0
        samplers += [Sampler(dataset, rank=r, **kwargs) for r in range(1, world_size)]
    per_rank = np.zeros((world_size, num_classes), dtype=np.float64)
    drawn = []
    for r, sampler in enumerate(samplers):
        for epoch in range(epochs):
            ids = sampler.epoch_ids(epoch)
            per_rank[r] += np.bincount(labels[ids], minlength=num_classes)
            drawn.append(ids)
    ids, times = np.unique(np.concatenate(drawn), return_counts=True)
    seen = np.bincount(labels[ids], minlength=num_classes).astype(np.float64)
    max_draws = np.zeros(num_classes, dtype=np.int64)
    np.maximum.at(max_draws, labels[ids], times)
    return SamplingReport(**common, exact=True, per_rank=per_rank, seen=seen, max_draws=max_draws)


def parse_sampling(
    spec: str, class_names: Sequence[str]
) -> tuple[str, dict[int, float] | None, float | None]:
    """``(mode, weights, power)`` of a sampling spec: ``balanced``, ``natural``, ``power=A``
    or ``weights=FILE``, FILE a JSON object ``{class name or id: weight}`` (names win when
    a name looks like an id).

    Raises:
        OptionError: an unknown spec, a bad number, an unreadable file or an unknown class.
    """
    mode, _, value = spec.partition("=")
    if mode in ("balanced", "natural") and not value:
        return mode, None, None
    if mode == "power" and value:
        try:
            return mode, None, float(value)
        except ValueError:
            raise OptionError(f"sampling power=A needs a number, got {value!r}") from None
    if mode == "weights" and value:
        return mode, load_weights(value, class_names), None
    raise OptionError(f"sampling {spec!r}: use balanced, natural, power=A or weights=FILE")


def load_weights(path: str, class_names: Sequence[str]) -> dict[int, float]:
    """``{class id: weight}`` from a JSON file ``{class name or id: weight}``.

    Raises:
        OptionError: the file is not a JSON object, a key names no class, a value is no number.
    """
    where = f"sampling weights={path}"
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
    except (OSError, ValueError) as exc:
        raise OptionError(f"{where}: cannot read a JSON object ({exc})") from exc
    if not isinstance(raw, dict):
        raise OptionError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OptionError(f"{where}: the weight of {key!r} is not a number: {value!r}")
    weights = resolve_weights(raw, class_names, len(class_names), where)
    return {c: float(w) for c, w in weights.items()}


def _shards_per_batch(dataset: Any, sampler: Sampler, batch_size: int) -> ShardsPerBatch | None:
    """Distinct shards per batch of ``batch_size`` over rank 0's first epoch (at most 1,000
    batches), for a dataset with ``shard_offsets``; None otherwise."""
    offsets = getattr(dataset, "shard_offsets", None)
    if offsets is None or batch_size < 1:
        return None
    batches = min(len(sampler) // batch_size, 1000)
    if batches == 0:
        return None
    ids = sampler.ids_at(np.arange(batches * batch_size, dtype=np.int64), 0)
    shards = np.searchsorted(np.asarray(offsets), ids, side="right") - 1
    rows = np.sort(shards.reshape(batches, batch_size), axis=1)
    distinct = (np.diff(rows, axis=1) != 0).sum(axis=1) + 1
    return ShardsPerBatch(
        batch_size=batch_size,
        shards=len(offsets) - 1,
        mean=round(float(distinct.mean()), 2),
        min=int(distinct.min()),
        max=int(distinct.max()),
    )


def _expected(
    plan: SamplingPlan, epochs: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-rank draws and distinct records seen, in expectation.

    Each epoch draws ``min(q_c, n_c)`` distinct records of class ``c``, a fresh random subset
    every epoch, so a record is missed by all ``E`` epochs with probability
    ``(1 - min(q_c, n_c) / n_c) ** E``.
    """
    counts = plan.class_counts.astype(np.float64)
    kept = plan.rank_size * plan.world_size / max(plan.epoch_size, 1)  # dropped tail
    share = plan.draws.astype(np.float64) * epochs * kept / plan.world_size
    per_rank = np.tile(share, (plan.world_size, 1))
    frac = np.divide(plan.unique, counts, out=np.zeros_like(counts), where=counts > 0)
    seen = counts * (1.0 - (1.0 - frac) ** epochs)
    return per_rank, seen
