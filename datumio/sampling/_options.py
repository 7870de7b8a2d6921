"""Options of the label-balanced sampler."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datumio.errors import OptionError, unknown_keywords

MODES = ("natural", "balanced", "weights", "power")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, kw_only=True)
class SamplerOptions:
    """How a :class:`~datumio.sampling.Sampler` draws records (validated on creation).

    Attributes:
        mode: ``"natural"`` (every record once per epoch, shuffled), ``"balanced"`` (every
            class equally often), ``"weights"`` (target proportions from ``weights``) or
            ``"power"`` (``p_c`` proportional to ``n_c ** power``). ``None`` means
            ``"weights"`` if ``weights`` is given, ``"power"`` if ``power`` is given, else
            ``"balanced"``.
        weights: ``{class id or class name: weight}`` (non-negative, finite); classes
            left out get 0. Names (and ids) are checked against the dataset when the
            Sampler is built: a key that is none of its classes is refused. Stored with
            float values; a Sampler's options hold class ids.
        power: exponent ``a`` of ``n_c ** a`` (1 natural, 0.5 square-root, 0 balanced).
        epoch_size: records per epoch over all ranks (default: the number of records). With
            ``stratified=True`` it is rounded down to a multiple of ``batch_size * world_size``.
        seed: run seed (non-negative); the plan is a pure function of (seed, epoch, position).
        stratified: make every batch hold its share of each class as nearly as possible.
        batch_size: batch size the stratified layout is built for (required by
            ``stratified=True``; otherwise only the default of ``Sampler.batches``).
        pad: when the epoch does not split evenly over ranks, ``False`` (default) drops the
            last ``epoch_size % world_size`` positions; ``True`` pads every rank to
            ``ceil(epoch_size / world_size)`` by wrapping around to the start of the epoch.
        rank: this process's rank; ``None`` discovers it (torch.distributed, ``RANK``, 0).
        world_size: number of ranks; ``None`` discovers it (``WORLD_SIZE``, 1).
        locality: shards per window of the locality order (``datumio.sampling._locality``):
            the draws of the stratified layout (it sets ``stratified``; needs ``batch_size``),
            each class handing them out a window of shards at a time, so a batch reads from
            few shards; for disks where random reads are expensive. Needs a dataset (its shard
            offsets). 0 (default): off.
        lockstep: with ``locality``, every class reads the same window at the same time
            (:func:`datumio.sampling._locality.lockstep_order`): a batch reads one window
            of shards (plus those of classes the window lacks), what a shard cache smaller
            than the dataset needs; a record's draws then follow its window's share instead
            of being spread evenly over the class. Default False.
    """

    mode: str | None = None
    weights: Mapping[int | str, float] | None = None
    power: float | None = None
    epoch_size: int | None = None
    seed: int = 0
    stratified: bool = False
    batch_size: int | None = None
    pad: bool = False
    rank: int | None = None
    world_size: int | None = None
    locality: int = 0
    lockstep: bool = False

    @classmethod
    def with_overrides(
        cls, options: SamplerOptions | None, overrides: Mapping[str, Any]
    ) -> SamplerOptions:
        """``options`` (default: all defaults) with the fields in ``overrides`` replaced.

        Raises:
            TypeError: a name that is not a field (with the closest field name).
        """
        error = unknown_keywords("Sampler", overrides, FIELDS)
        if error is not None:
            raise error
        if options is None:
            return cls(**overrides)
        fields = dict(overrides)
        if "mode" not in fields and ("weights" in fields or "power" in fields):
            fields["mode"] = None  # the mode options resolved to came from its own fields
        return dataclasses.replace(options, **fields)

    def __post_init__(self) -> None:
        mode = self.mode
        if mode is not None and mode not in MODES:
            raise OptionError(f"mode must be one of {MODES}, got {mode!r}")
        if self.weights is not None and self.power is not None:
            raise OptionError("pass either weights= or power=, not both")
        if self.weights is not None:
            if mode not in (None, "weights"):
                raise OptionError(f"weights= needs mode='weights' (or no mode), got mode={mode!r}")
            mode = "weights"
            object.__setattr__(self, "weights", _check_weights(self.weights))
        elif self.power is not None:
            if mode not in (None, "power"):
                raise OptionError(f"power= needs mode='power' (or no mode), got mode={mode!r}")
            mode = "power"
            if isinstance(self.power, bool) or not isinstance(self.power, numbers.Real):
                raise OptionError(f"power must be a number, got {self.power!r}")
            if not math.isfinite(self.power):
                raise OptionError(f"power must be finite, got {self.power!r}")
            object.__setattr__(self, "power", float(self.power))
        elif mode == "weights":
            raise OptionError("mode='weights' needs weights={class: weight}")
        elif mode == "power":
            raise OptionError("mode='power' needs power=a (e.g. 0.5 for square-root)")
        object.__setattr__(self, "mode", mode or "balanced")
        if self.epoch_size is not None and (not _is_int(self.epoch_size) or self.epoch_size < 1):
            raise OptionError(f"epoch_size must be a positive int or None, got {self.epoch_size!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise OptionError(f"seed must be a non-negative int, got {self.seed!r}")
        if self.batch_size is not None and (not _is_int(self.batch_size) or self.batch_size < 1):
            raise OptionError(f"batch_size must be a positive int or None, got {self.batch_size!r}")
        if self.stratified and self.batch_size is None:
            raise OptionError(
                "stratified=True needs batch_size= (the layout is built per batch); "
                "pass the batch size you will give to batches()"
            )
        if self.rank is not None and (not _is_int(self.rank) or self.rank < 0):
            raise OptionError(f"rank must be a non-negative int or None, got {self.rank!r}")
        if self.world_size is not None and (not _is_int(self.world_size) or self.world_size < 1):
            raise OptionError(f"world_size must be a positive int or None, got {self.world_size!r}")
        if not _is_int(self.locality) or self.locality < 0:
            raise OptionError(f"locality must be shards per window (0: off), got {self.locality!r}")
        if self.locality:
            if self.batch_size is None:
                raise OptionError(
                    "locality= needs batch_size= (it builds on the stratified layout, which "
                    "spreads every class evenly over the batches)"
                )
            object.__setattr__(self, "stratified", True)
        if not isinstance(self.lockstep, bool):
            raise OptionError(f"lockstep must be True or False, got {self.lockstep!r}")
        if self.lockstep and not self.locality:
            raise OptionError("lockstep=True needs locality=K (the shards per window)")

    def fingerprint(self) -> dict[str, object]:
        """Return the JSON-safe fields that fix the epoch plan (checked on resume)."""
        return {
            "mode": self.mode,
            "weights": None if self.weights is None else sorted(self.weights.items()),
            "power": self.power,
            "epoch_size": self.epoch_size,
            "stratified": self.stratified,
            "batch_size": self.batch_size if self.stratified else None,
            "pad": self.pad,
            "locality": self.locality,
            **({"lockstep": True} if self.lockstep else {}),
        }


def _check_weights(weights: object) -> dict[int | str, float]:
    if not isinstance(weights, Mapping):
        raise OptionError(
            f"weights must be a mapping {{class id or name: weight}}, got {type(weights)}; "
            "for one weight per class in a list, pass dict(enumerate(weights))"
        )
    checked: dict[int | str, float] = {}
    for key, value in weights.items():
        is_id = _is_int(key) or (hasattr(key, "__index__") and not isinstance(key, bool))
        if not is_id and not isinstance(key, str):
            raise OptionError(f"weights keys must be class ids or class names, got {key!r}")
        try:
            w = float(value)
        except (TypeError, ValueError):
            raise OptionError(f"weights[{key!r}] must be a number, got {value!r}") from None
        if not math.isfinite(w) or w < 0:
            raise OptionError(f"weights[{key!r}] must be finite and >= 0, got {value!r}")
        checked[key if isinstance(key, str) else int(key)] = w
    if not any(w > 0 for w in checked.values()):
        raise OptionError("weights must give at least one class a positive weight")
    return checked


#: The option names of :class:`SamplerOptions` (keywords of ``Sampler`` and ``Loader``).
FIELDS = tuple(f.name for f in dataclasses.fields(SamplerOptions))
