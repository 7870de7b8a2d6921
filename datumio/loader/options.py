"""Options of the training loader: one frozen dataclass, validated on construction."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, get_args

from datumio import checks
from datumio.errors import OptionError, unknown_keywords
from datumio.sampling import ClassWeights, Mode, SamplerOptions, given_way
from datumio.shards.handles import check_max_open_shards

#: Extra arrays a batch may carry after (images, labels).
Extra = Literal["ids", "groups"]
#: Where records are decoded: in the workers, or on the consumer's device.
Decode = Literal["worker", "device"]
#: How worker processes start (``multiprocessing`` start methods).
StartMethod = Literal["spawn", "forkserver", "fork"]
# The same choices at run time, for the checks and for ``if value in DECODES`` narrowing.
EXTRAS: tuple[Extra, ...] = get_args(Extra)
DECODES: tuple[Decode, ...] = get_args(Decode)
START_METHODS: tuple[StartMethod, ...] = get_args(StartMethod)
#: ``Loader`` keywords that go to the Sampler it builds: ``sampling`` (its ``mode``) and
#: every :class:`~datumio.sampling.SamplerOptions` field but those the loader owns.
SAMPLER_KEYWORDS = (
    "sampling",
    *(
        f.name
        for f in dataclasses.fields(SamplerOptions)
        if f.name not in ("seed", "batch_size", "mode")
    ),
)
#: Worker processes allowed per usable core: beyond it the processes, their memory and
#: their slots crowd the machine out long before a batch arrives.
WORKERS_PER_CORE = 8
#: The bound never goes below this, so a machine of one or two cores still runs a handful.
MIN_WORKERS_BOUND = 16


def _start_method(given: StartMethod | None) -> StartMethod:
    """``given`` (None: :func:`default_start_method`) if this platform has it."""
    method = default_start_method() if given is None else given
    here = multiprocessing.get_all_start_methods()
    if method not in here:
        usable = ", ".join(repr(m) for m in START_METHODS if m in here)
        raise OptionError(f"start_method={given!r} is not available here; give one of {usable}")
    return method


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the system says, else all)."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        return max(1, len(affinity(0)))
    return max(1, os.cpu_count() or 1)


def check_worker_count(workers: int, option: str = "workers") -> None:
    """Refuse more worker processes than :data:`WORKERS_PER_CORE` per usable core (at
    least :data:`MIN_WORKERS_BOUND`).

    Raises:
        OptionError: naming ``option``, the bound and what is usual.
    """
    cores = usable_cores()
    bound = max(WORKERS_PER_CORE * cores, MIN_WORKERS_BOUND)
    if workers > bound:
        raise OptionError(
            f"{option}={workers} is more than {bound} worker processes, the most this "
            f"machine allows ({WORKERS_PER_CORE} per usable core, {cores} cores here, at "
            f"least {MIN_WORKERS_BOUND}): each worker is a process with its own memory and "
            f"slots. One worker per core is usual; give {option}={cores} or fewer"
        )


def default_start_method() -> StartMethod:
    """``forkserver`` where it exists (Linux, macOS), else ``spawn``; never ``fork``.

    ``fork`` copies the training process (threads, CUDA contexts, open LMDB handles) and is
    unsafe there; ``forkserver`` forks workers from a small clean server, so starting and
    replacing a worker costs a fork rather than a fresh interpreter.
    """
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods and sys.platform != "win32" else "spawn"


@dataclass(frozen=True, kw_only=True)
class LoaderOptions:
    """How :class:`datumio.Loader` runs its workers and hands out batches.

    Every field is also a keyword of ``Loader(...)``.
    """

    batch_size: int
    #: Worker processes (at least 1).
    workers: int = 2
    #: Batches planned ahead of the one being yielded (default 2 per worker).
    prefetch: int | None = None
    #: Shared-memory slots in the ring (default ``prefetch + 2``): the extra slots are what
    #: the caller may keep referenced while the loader goes on.
    slots: int | None = None
    #: Run seed of the sampler (when the loader builds it) and of every augmentation.
    seed: int = 0
    drop_last: bool = True
    #: Hand out arrays the caller owns (one copy per batch in this process) and reuse the
    #: slot at once.
    copy: bool = False
    #: Raise on a record that fails to read or decode instead of replacing it.
    strict: bool = False
    #: Extra arrays yielded after (images, labels), in this order: "ids", "groups".
    extras: Sequence[Extra] = ()
    #: "spawn", "forkserver" or "fork"; None: :func:`default_start_method`.
    start_method: StartMethod | None = None
    #: Longest wait for one batch before LoaderError (workers alive but stuck).
    batch_timeout_s: float = 300.0
    #: Replacement workers allowed for one batch before LoaderError.
    max_restarts: int = 3
    #: "worker": workers decode and augment; "device": workers hand over the JPEG bytes and
    #: the drawn crop/flip, the consumer decodes on its device (``datumio.augment.device``).
    decode: Decode = "worker"
    #: Batches each worker asks the kernel to read ahead (``posix_fadvise(WILLNEED)`` over
    #: their records' bytes): its current batch and those already queued to it. 0: none.
    #: Records in memory cost nothing; from a cold disk the reads queue up at once.
    readahead: int = 3
    #: Record fields added to each batch after (images, labels), in this order
    #: (``datumio.loader.fields``); boxes, keypoints and masks follow the augmentation.
    fields: Sequence[str] = ()
    #: Boxes keeping less than this fraction of their area in view are dropped.
    box_min_visible: float = 0.25
    #: Keypoint index pairs that swap when a sample is mirrored (left/right eye, ...).
    keypoint_pairs: Sequence[tuple[int, int]] = ()
    #: Mask value outside the image after augmentation, and of records without a mask.
    mask_fill: int = 255
    #: Balance over this instead of the labels: "group" (the dataset's groups) or an int
    #: or multilabel field (a multi-label record counts as its rarest label).
    balance_by: str | None = None
    #: Shards each worker keeps open at once (least recently used closed first); None: the
    #: dataset's own setting, by default a quarter of the open-file limit
    #: (``datumio.shards.handles``): any number of shards fits ``ulimit -n``.
    max_open_shards: int | None = None
    #: The stored split to read (``"train"``, ``"val"`` ...: ``datumio split`` makes them);
    #: None: the dataset given as it is (a path: every record).
    split: str | None = None

    @classmethod
    def with_overrides(
        cls, options: LoaderOptions | None, batch_size: int | None, overrides: Mapping[str, Any]
    ) -> tuple[LoaderOptions, dict[str, Any]]:
        """The options of ``Loader(path, batch_size, options=..., **overrides)``: ``options``
        with the loader fields of ``overrides`` replaced, and the sampler keywords given
        (:data:`SAMPLER_KEYWORDS`) for :meth:`sampler_options`.

        Raises:
            TypeError: a keyword that is neither (with the closest name).
        """
        mine = {f.name for f in dataclasses.fields(cls)}
        error = unknown_keywords("Loader", overrides, mine | set(SAMPLER_KEYWORDS))
        if error is not None:
            raise error
        fields = {k: v for k, v in overrides.items() if k in mine}
        if batch_size is not None:
            fields["batch_size"] = batch_size
        if options is None:
            if "batch_size" not in fields:
                raise TypeError("Loader() needs batch_size (or options=LoaderOptions(...))")
            loader = cls(**fields)
        else:
            loader = dataclasses.replace(options, **fields)
        return loader, {k: v for k, v in overrides.items() if k in SAMPLER_KEYWORDS}

    def sampler_options(self, given: Mapping[str, Any]) -> SamplerOptions:
        """The options of the Sampler a Loader builds: the sampler keywords ``given``
        (``sampling`` names the mode), this run's seed, and the batch size when the order
        needs it (``locality``)."""
        fields = {("mode" if k == "sampling" else k): v for k, v in given.items()}
        fields["mode"] = given_way(fields.get("mode"), fields.get("weights"), fields.get("power"))
        fields["seed"] = self.seed
        if fields.get("locality"):
            fields["batch_size"] = self.batch_size
        return SamplerOptions(**fields)

    def __post_init__(self) -> None:
        checks.apply(self, _CHECKS)
        check_worker_count(self.workers)
        check_max_open_shards(self.max_open_shards)
        prefetch = 2 * self.workers if self.prefetch is None else self.prefetch
        object.__setattr__(self, "prefetch", prefetch)
        object.__setattr__(self, "slots", prefetch + 2 if self.slots is None else self.slots)
        object.__setattr__(self, "start_method", _start_method(self.start_method))

    @property
    def num_prefetch(self) -> int:
        return int(self.prefetch or 1)

    @property
    def num_slots(self) -> int:
        return int(self.slots or 1)

    @property
    def method(self) -> str:
        return str(self.start_method)


class LoaderKeywords(TypedDict, total=False):
    """The keywords of ``Loader(...)``: every :class:`LoaderOptions` field but
    ``batch_size`` (a parameter of its own), and the sampler's (:data:`SAMPLER_KEYWORDS`;
    ``sampling`` is its mode). The dataclasses hold the defaults and what each one means."""

    workers: int
    prefetch: int | None
    slots: int | None
    seed: int
    drop_last: bool
    copy: bool
    strict: bool
    extras: Sequence[Extra]
    start_method: StartMethod | None
    batch_timeout_s: float
    max_restarts: int
    decode: Decode
    readahead: int
    fields: Sequence[str]
    box_min_visible: float
    keypoint_pairs: Sequence[tuple[int, int]]
    mask_fill: int
    balance_by: str | None
    max_open_shards: int | None
    split: str | None
    sampling: Mode | None
    weights: ClassWeights | None
    power: float | None
    epoch_size: int | None
    stratified: bool
    pad: bool
    rank: int | None
    world_size: int | None
    locality: int
    lockstep: bool


#: The check of each field (``datumio.checks``); the rules between fields (the worker bound,
#: the defaults of prefetch and slots, the start methods of this platform) follow in
#: :meth:`LoaderOptions.__post_init__`.
_CHECKS: dict[str, checks.Check] = {
    "batch_size": checks.positive_int,
    "workers": checks.positive_int,
    "prefetch": checks.optional(checks.integer(1, want="a positive int (default 2*workers)")),
    "slots": checks.optional(checks.integer(1, want="a positive int (default prefetch + 2)")),
    "seed": checks.non_negative_int,
    "drop_last": checks.flag,
    "copy": checks.flag,
    "strict": checks.flag,
    "extras": checks.sequence(checks.choice(EXTRAS)),
    "start_method": checks.optional(checks.choice(START_METHODS)),
    "batch_timeout_s": checks.number(0.0, above=True, want="seconds > 0"),
    "max_restarts": checks.non_negative_int,
    "decode": checks.choice(DECODES),
    "readahead": checks.integer(0, want="batches ahead (0: none)"),
    "fields": checks.sequence(checks.string(empty=False), want="a tuple of field names"),
    "box_min_visible": checks.probability,
    "keypoint_pairs": checks.sequence(
        checks.pair(checks.non_negative_int), want="pairs of keypoint indices"
    ),
    "mask_fill": checks.integer(0, 255),
    "balance_by": checks.optional(checks.string(empty=False)),
    "split": checks.optional(checks.string(empty=False)),
}
