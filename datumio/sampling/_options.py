"""Options of the label-balanced sampler."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, get_args

from datumio.checks import (
    Check,
    apply,
    choice,
    finite,
    flag,
    non_negative_int,
    number,
    on_top,
    optional,
    positive_int,
    refuse,
)
from datumio.errors import OptionError

#: How a Sampler draws: see :class:`SamplerOptions`.
Mode = Literal["natural", "balanced", "weights", "power"]
MODES: tuple[Mode, ...] = get_args(Mode)
#: ``{class id or class name: weight}``; the three spellings let a ``dict[int, float]``
#: or a ``dict[str, float]`` through (``Mapping`` is invariant in its keys).
ClassWeights = Mapping[int, float] | Mapping[str, float] | Mapping[int | str, float]


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

    mode: Mode | None = None
    weights: ClassWeights | None = None
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
        fields = dict(overrides)
        if (
            options is not None
            and "mode" not in fields
            and ("weights" in fields or "power" in fields)
        ):
            fields["mode"] = None  # the mode options resolved to came from its own fields
        return on_top(cls, options, fields, "Sampler")

    def __post_init__(self) -> None:
        apply(self, _CHECKS)
        object.__setattr__(self, "mode", _resolved_mode(self.mode, self.weights, self.power))
        if self.stratified and self.batch_size is None:
            raise OptionError(
                "stratified=True needs batch_size= (the layout is built per batch); "
                "pass the batch size you will give to batches()"
            )
        if self.locality:
            if self.batch_size is None:
                raise OptionError(
                    "locality= needs batch_size= (it builds on the stratified layout, which "
                    "spreads every class evenly over the batches)"
                )
            object.__setattr__(self, "stratified", True)
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


def given_way(mode: Mode | None, weights: object, power: object) -> Mode | None:
    """``mode``, except that ``"balanced"`` (the default of ``Loader(sampling=)`` and
    ``TorchSampler``) gives way (None) to the mode ``weights=`` or ``power=`` implies."""
    if mode == "balanced" and (weights is not None or power is not None):
        return None
    return mode


def _resolved_mode(mode: Mode | None, weights: object, power: object) -> Mode:
    """The mode ``mode`` names, or the one ``weights=`` or ``power=`` implies."""
    if weights is not None and power is not None:
        raise OptionError("pass either weights= or power=, not both")
    implied: Mode | None = "weights" if weights is not None else None
    implied = "power" if power is not None else implied
    if implied is None and mode in _NEEDS:
        raise OptionError(_NEEDS[mode])
    if implied is not None and mode not in (None, implied):
        raise OptionError(f"{implied}= needs mode={implied!r} (or no mode), got mode={mode!r}")
    return implied or mode or "balanced"


_NEEDS = {
    "weights": "mode='weights' needs weights={class: weight}",
    "power": "mode='power' needs power=a (e.g. 0.5 for square-root)",
}
_WEIGHT = number(0.0, want="a finite number >= 0")


def _class_weights(name: str, value: Any) -> dict[int | str, float]:
    """``{class id or class name: weight >= 0}`` with at least one positive weight."""
    if not isinstance(value, Mapping):
        raise refuse(
            name,
            value,
            "a mapping {class id or name: weight} (for one weight per class in a list, "
            "dict(enumerate(weights)))",
        )
    checked: dict[int | str, float] = {}
    for key, weight in value.items():
        if isinstance(key, bool) or (not isinstance(key, str) and not hasattr(key, "__index__")):
            raise refuse(f"a key of {name}", key, "class ids or class names")
        key = key if isinstance(key, str) else int(key)
        checked[key] = _WEIGHT(f"{name}[{key!r}]", weight)
    if not any(w > 0 for w in checked.values()):
        raise refuse(name, value, "at least one class a positive weight")
    return checked


#: The check of each field, in order (``datumio.checks``); the rules between fields follow
#: in :meth:`SamplerOptions.__post_init__`.
_CHECKS: dict[str, Check] = {
    "mode": optional(choice(MODES)),
    "weights": optional(_class_weights),
    "power": optional(finite),
    "epoch_size": optional(positive_int),
    "seed": non_negative_int,
    "stratified": flag,
    "batch_size": optional(positive_int),
    "pad": flag,
    "rank": optional(non_negative_int),
    "world_size": optional(positive_int),
    "locality": non_negative_int,
    "lockstep": flag,
}


class SamplerKeywords(TypedDict, total=False):
    """The keywords of ``Sampler(...)``: every :class:`SamplerOptions` field, with its type
    (the dataclass holds the defaults and what each one means)."""

    mode: Mode | None
    weights: ClassWeights | None
    power: float | None
    epoch_size: int | None
    seed: int
    stratified: bool
    batch_size: int | None
    pad: bool
    rank: int | None
    world_size: int | None
    locality: int
    lockstep: bool
