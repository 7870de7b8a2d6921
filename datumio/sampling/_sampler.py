"""The label-balanced sampler: exact quotas, keyed permutations, pure index arithmetic.

How position ``p`` of rank ``r`` in epoch ``e`` becomes a record id (see docs/sampling.md):

1. Rank positions to plan positions: ``g = p * world_size + rank`` (``pad=True``: modulo the
   epoch size, wrapping to the epoch start).
2. Plan position to slot: ``s = P_E(g)``, a keyed Feistel permutation of ``[0, E)``. The
   stratified layout replaces this step (see :meth:`Sampler._stratified_slots`).
3. Slots are the class quotas laid end to end; ``c`` is found by ``searchsorted`` on the
   cumulative quotas and ``j = s - cum_q[c]`` is the draw number within the class.
4. Pass ``k = j // n_c`` over class ``c`` and member ``P_{c,k}(j % n_c)``: each pass is a fresh
   keyed permutation of the class, so records repeat only after the class is exhausted.

Every key comes from ``SeedSequence(seed, spawn_key=(epoch,))``, so the record at any position is
a pure function of (seed, epoch, position): the same in every process, with no stored shuffle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Unpack

import numpy as np
import numpy.typing as npt

from datumio.errors import OptionError
from datumio.sampling._class_index import ClassIndex
from datumio.sampling._distributed import resolve_rank
from datumio.sampling._elastic import Remainder, merge, remainder
from datumio.sampling._feistel import U64, derive_keys, permute
from datumio.sampling._locality import local_order, lockstep_order
from datumio.sampling._options import Mode, SamplerKeywords, SamplerOptions
from datumio.sampling._plan import SamplingPlan
from datumio.sampling._quotas import I64, check_drawn, largest_remainder_quotas, target_weights
from datumio.sampling._source import resolve_source
from datumio.sampling._state import STATE_FORMAT, check_state
from datumio.sampling._weights import resolve_weights

_CHUNK = 1 << 20  # positions per vectorised step in epoch_ids (bounds temporaries)
_KEY_CACHE_SIZE = 8


class Sampler:
    """Deterministic, random-access, resumable label-balanced sampler.

    Args:
        labels_or_dataset: 1-D integer labels, or a dataset (:class:`ClassIndex`: ``labels``,
            and where present ``class_offsets``, ``class_ids``, ``num_classes``,
            ``shard_offsets``).
        mode: a :data:`~datumio.sampling.Mode` (default ``"balanced"``, or implied by
            ``weights=``/``power=``), second or by name; see :class:`SamplerOptions`.
        options: a :class:`SamplerOptions`; the keywords (:class:`SamplerKeywords`, every
            field of it, typed) go on top.
        weights: ``{class id or name: weight}`` (names of the dataset's classes; a key
            that is none of its classes is refused).
        power: exponent ``a`` of ``n_c ** a``.
        groups: integer group per record, balanced over instead of the labels.
        epoch_size: draws per epoch over all ranks (default: number of records).
        seed: run seed.
        rank: this rank (default: discovered).
        world_size: number of ranks (default: discovered).
        stratified: make each batch hold its share of every class.
        batch_size: batch size (required with ``stratified=True``).
        pad: pad ranks by wrapping instead of dropping the uneven tail.

    Thread/fork/pickle: holds only numpy arrays and ints, pickles by value (a memory-mapped
    index pickles as its data) and is safe to fork; iteration mutates ``epoch``/``position``,
    so drive one ``batches()`` iterator at a time. ``ids_at`` is pure and thread-safe.

    Raises:
        OptionError: a bad option, naming the parameter.
    """

    def __init__(
        self,
        labels_or_dataset: npt.ArrayLike | ClassIndex,
        mode: Mode | None = None,
        /,
        *,
        groups: npt.ArrayLike | None = None,
        options: SamplerOptions | None = None,
        **overrides: Unpack[SamplerKeywords],
    ) -> None:
        r"""``options`` (default :class:`SamplerOptions`\ ``()``) with any of its fields
        given as keywords on top (``Sampler(ds, "power", power=0.5, seed=1)``); ``mode``
        goes second or by name."""
        if mode is not None:
            if "mode" in overrides:
                raise TypeError("Sampler() got mode twice: second and as mode=")
            overrides["mode"] = mode
        self._init(labels_or_dataset, SamplerOptions.with_overrides(options, overrides), groups)

    @classmethod
    def from_options(
        cls,
        labels_or_dataset: npt.ArrayLike | ClassIndex,
        options: SamplerOptions,
        groups: npt.ArrayLike | None = None,
    ) -> Sampler:
        """Build a sampler from a :class:`SamplerOptions`."""
        sampler = cls.__new__(cls)
        sampler._init(labels_or_dataset, options, groups)
        return sampler

    def _init(
        self,
        source: npt.ArrayLike | ClassIndex,
        options: SamplerOptions,
        groups: npt.ArrayLike | None,
    ) -> None:
        self._source = resolve_source(source, groups)
        weights = None
        if options.weights is not None:
            weights = resolve_weights(
                options.weights, self._source.class_names, self._source.num_classes
            )
            if weights != dict(options.weights):  # names given: the options hold ids
                options = dataclasses.replace(options, weights=weights)
        self.options = options
        self._rank, self._world = resolve_rank(options.rank, options.world_size)
        n = self._source.num_records
        epoch_size = n if options.epoch_size is None else options.epoch_size
        if options.stratified:
            global_batch = (options.batch_size or 1) * self._world
            epoch_size -= epoch_size % global_batch
            if epoch_size == 0:
                raise OptionError(
                    f"epoch_size {options.epoch_size or n} is smaller than batch_size * "
                    f"world_size = {global_batch}; lower batch_size or raise epoch_size"
                )
        self._epoch_size = epoch_size
        self._shard_offsets = getattr(source, "shard_offsets", None)
        if options.locality and self._shard_offsets is None:
            raise OptionError(
                "locality= orders draws by shard: build the Sampler from a datumio Dataset"
            )
        self._local: dict[int, I64] = {}  # epoch -> the locality order's ids (two kept)
        self._direct = (
            options.mode == "natural"
            and not options.stratified
            and not options.locality
            and epoch_size == n
        )
        if self._direct:  # one permutation of all records: no class index needed
            self._quotas: I64 | None = None
        else:
            counts = self._source.counts
            raw = target_weights(counts, options.mode or "balanced", weights, options.power)
            self._quotas = largest_remainder_quotas(raw, epoch_size)
            self._cum_quotas = np.concatenate([[0], np.cumsum(self._quotas)]).astype(np.int64)
            self._offsets, self._class_ids = self._source.ensure_index()
            self._counts = counts
        if options.stratified or not options.pad:
            self._rank_size = epoch_size // self._world
        else:
            self._rank_size = -(-epoch_size // self._world)
        self._epoch = 0
        self._position = 0
        #: The rest of an epoch begun on another world (``load_state_dict`` of a merged state).
        self._rest: Remainder | None = None
        self._keys: dict[int, U64] = {}

    # -- properties -------------------------------------------------------------------------

    def __len__(self) -> int:
        """Records of the current epoch for this rank (an epoch resumed on another world
        size: its rest, split over this world)."""
        return self._size(self._epoch)

    def _size(self, epoch: int) -> int:
        rest = self._rest
        return rest.rank_size if rest is not None and rest.epoch == epoch else self._rank_size

    @property
    def epoch(self) -> int:
        """The current epoch (advanced by ``set_epoch`` or by finishing ``batches()``)."""
        return self._epoch

    @property
    def position(self) -> int:
        """Records of the current epoch this rank has already been given."""
        return self._position

    @property
    def epoch_size(self) -> int:
        """Draws per epoch over all ranks (after stratified rounding)."""
        return self._epoch_size

    @property
    def rank(self) -> int:
        """This process's rank."""
        return self._rank

    @property
    def world_size(self) -> int:
        """Number of ranks."""
        return self._world

    @property
    def num_records(self) -> int:
        """Records in the dataset (or entries in ``groups``)."""
        return self._source.num_records

    # -- the pure map -----------------------------------------------------------------------

    def _epoch_keys(self, epoch: int) -> U64:
        cached = self._keys.get(epoch)
        if cached is not None:
            return cached
        seq = np.random.SeedSequence(self.options.seed, spawn_key=(epoch,))
        keys = np.asarray(seq.generate_state(4, dtype=np.uint64), dtype=np.uint64)
        if len(self._keys) >= _KEY_CACHE_SIZE:
            self._keys.pop(next(iter(self._keys)))
        self._keys[epoch] = keys
        return keys

    def _stratified_slots(self, positions: I64, keys: U64, rank: int | None = None) -> I64:
        """Slots for rank positions in the stratified layout.

        The epoch's ``E = nb * W * B`` slots are read as ``W * B`` stripes of ``nb`` slots.
        Global batch ``b`` takes slot ``P(b)`` of every stripe (``P`` a keyed permutation of
        the ``nb`` batches) and rank ``r`` takes stripes ``r, r + W, r + 2W, ...`` of it, an
        arithmetic progression of step ``W * nb``: a class holding ``q_c`` consecutive slots
        lands ``floor`` or ``ceil`` of ``q_c * B / E`` times in every batch. The order inside
        a batch is a keyed permutation of ``[0, B)`` per batch.
        """
        batch = self.options.batch_size or 1
        world = self._world
        num_batches = self._epoch_size // (batch * world)
        b = positions // batch
        inner = permute(positions % batch, batch, derive_keys(keys[2], b)).astype(np.int64)
        column = permute(b, num_batches, keys[3]).astype(np.int64)
        stripe = inner * world + (self._rank if rank is None else rank)
        return stripe * num_batches + column

    def ids_at(self, positions: npt.ArrayLike, epoch: int | None = None) -> I64:
        """Return the record ids at this rank's ``positions`` of ``epoch`` (default: current).

        Pure: depends only on (seed, options, rank, world size, epoch, positions).

        Raises:
            OptionError: a position outside ``[0, len(self))`` or a negative epoch.
        """
        epoch = self._epoch if epoch is None else int(epoch)
        if epoch < 0:
            raise OptionError(f"epoch must be >= 0, got {epoch}")
        pos = np.atleast_1d(np.asarray(positions, dtype=np.int64))
        if pos.size == 0:
            return np.empty(0, dtype=np.int64)
        size = self._size(epoch)
        if int(pos.min()) < 0 or int(pos.max()) >= size:
            raise OptionError(
                f"positions must lie in [0, {size}) (len(sampler) in epoch {epoch}), "
                f"got [{int(pos.min())}, {int(pos.max())}]"
            )
        keys = self._epoch_keys(epoch)
        if self.options.locality:
            return self._local_plan(epoch)[pos * self._world + self._rank]
        if self.options.stratified:
            slots = self._stratified_slots(pos, keys)
        elif self._rest is not None and self._rest.epoch == epoch:
            rest = self._rest.plan_positions(pos, self._rank)
            slots = permute(rest, self._epoch_size, keys[0]).astype(np.int64)
        else:
            plan_pos = pos * self._world + self._rank
            if self.options.pad:
                plan_pos %= self._epoch_size
            slots = permute(plan_pos, self._epoch_size, keys[0]).astype(np.int64)
        if self._direct:
            return slots
        return self._draw(slots, keys)

    def plan_positions(self, positions: npt.ArrayLike, epoch: int | None = None) -> I64:
        """Return the epoch-plan positions of this rank's ``positions`` of ``epoch`` (default:
        current): what keys a sample's augmentation, so that a draw is augmented alike on
        any world it is served on.

        ``position * world_size + rank`` (past the epoch's end for a ``pad=True`` draw
        that wraps); in an epoch resumed on another world size, the plan positions of the
        rest of the epoch this rank serves.
        """
        epoch = self._epoch if epoch is None else int(epoch)
        pos = np.atleast_1d(np.asarray(positions, dtype=np.int64))
        rest = self._rest
        if rest is None or rest.epoch != epoch:
            return pos * self._world + self._rank
        return rest.plan_positions(pos, self._rank, wrap=False)

    def _local_plan(self, epoch: int) -> I64:
        """Every plan position's id in the locality order (made once per epoch)."""
        cached = self._local.get(epoch)
        if cached is None:
            keys = self._epoch_keys(epoch)
            # The stratified slots of every rank, by plan position (position * W + rank):
            # global batch b is plan positions [b * B * W, (b + 1) * B * W).
            positions = np.arange(self._rank_size, dtype=np.int64)
            slots = np.empty(self._rank_size * self._world, dtype=np.int64)
            for rank in range(self._world):
                slots[rank :: self._world] = self._stratified_slots(positions, keys, rank)
            ids = self._draw(slots, keys)
            classes = np.searchsorted(self._cum_quotas, slots, side="right") - 1
            order = lockstep_order if self.options.lockstep else local_order
            cached = order(
                ids,
                classes,
                np.asarray(self._shard_offsets),
                self.options.locality,
                self.options.seed,
                epoch,
            )
            if len(self._local) >= 2:
                self._local.pop(next(iter(self._local)))
            self._local[epoch] = cached
        return cached

    def _draw(self, slots: I64, keys: U64) -> I64:
        """The record ids of epoch-plan ``slots``: class by quota, then a member of it."""
        cls = np.searchsorted(self._cum_quotas, slots, side="right") - 1
        draw = slots - self._cum_quotas[cls]
        size = self._counts[cls]
        member = permute(draw % size, size, derive_keys(keys[1], cls, draw // size))
        ids = np.asarray(
            self._class_ids[self._offsets[cls].astype(np.int64) + member.astype(np.int64)], np.int64
        )
        if self._source.stored_index and self._source.labels is not None:
            check_drawn(ids, cls, self._source.labels)
        return ids

    def epoch_ids(self, epoch: int | None = None) -> I64:
        """Return every record id this rank draws in ``epoch`` (default: current), in order."""
        epoch = self._epoch if epoch is None else int(epoch)
        size = self._size(epoch)
        out = np.empty(size, dtype=np.int64)
        for start in range(0, size, _CHUNK):
            stop = min(start + _CHUNK, size)
            out[start:stop] = self.ids_at(np.arange(start, stop, dtype=np.int64), epoch)
        return out

    # -- iteration and state ----------------------------------------------------------------

    def _batch_size(self, batch_size: int | None) -> int:
        size = self.options.batch_size if batch_size is None else batch_size
        if size is None or isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise OptionError(f"batch_size must be a positive int, got {size!r}")
        if self.options.stratified and size != self.options.batch_size:
            raise OptionError(
                f"this sampler is stratified for batch_size={self.options.batch_size}; "
                f"batches() got {size}"
            )
        return size

    def num_batches(
        self, batch_size: int | None = None, drop_last: bool = True, start: int = 0
    ) -> int:
        """Batches of the current epoch on this rank from position ``start`` (default: the
        whole epoch; equal on every rank)."""
        size = self._batch_size(batch_size)
        left = max(self._size(self._epoch) - start, 0)
        return left // size if drop_last else -(-left // size)

    def batches_left(self, batch_size: int | None = None, drop_last: bool = True) -> int:
        """Batches :meth:`batches` yields from here: the rest of the current epoch."""
        return self.num_batches(batch_size, drop_last, self._position)

    def check_batches(self, batch_size: int | None = None, drop_last: bool = True) -> int:
        """:meth:`num_batches`, refusing an epoch without a batch (every epoch would yield
        nothing, without a word).

        Raises:
            OptionError: naming the batch size, the draws per epoch on this rank and the fix.
        """
        count = self.num_batches(batch_size, drop_last)
        if count:
            return count
        size, draws, world = self._batch_size(batch_size), self._rank_size, self._world
        spread = f" ({self._epoch_size} over {world} ranks)" if world > 1 else ""
        if draws == 0:
            raise OptionError(
                f"an epoch has no draw on this rank: epoch_size {self._epoch_size} over "
                f"world_size {world} leaves none per rank (pad=False drops the rest); pass "
                "pad=True or a larger epoch_size"
            )
        raise OptionError(
            f"batch_size={size} with drop_last=True gives epochs of no batch: an epoch has "
            f"{draws} draws on this rank{spread}, fewer than one batch. Pass drop_last=False "
            f"(a batch of {draws} per epoch), a batch_size of at most {draws}, or a larger "
            "epoch_size"
        )

    def batches(self, batch_size: int | None = None, drop_last: bool = True) -> Iterator[I64]:
        """Yield id arrays for the rest of the current epoch, from ``position``.

        ``position`` advances as each batch is handed out; when the epoch is exhausted the
        sampler moves to the next epoch at position 0.

        Raises:
            OptionError: a bad batch size, or one that leaves an epoch without a batch
                (:meth:`check_batches`).
        """
        self.check_batches(batch_size, drop_last)
        return self._iterate(self._batch_size(batch_size), drop_last)

    def _iterate(self, size: int, drop_last: bool) -> Iterator[I64]:
        epoch, start = self._epoch, self._position
        rank_size = self._size(epoch)
        remaining = rank_size - start
        stop = start + (remaining // size) * size if drop_last else rank_size
        for lo in range(start, stop, size):
            hi = min(lo + size, stop)
            ids = self.ids_at(np.arange(lo, hi, dtype=np.int64), epoch)
            self._position = hi
            yield ids
        if self._epoch == epoch:
            self._epoch, self._position = epoch + 1, 0

    def set_epoch(self, epoch: int) -> None:
        """Move to ``epoch`` at position 0 (no-op when already in ``epoch``, to keep a resume)."""
        if isinstance(epoch, bool) or not isinstance(epoch, int | np.integer) or epoch < 0:
            raise OptionError(f"epoch must be a non-negative int, got {epoch!r}")
        if int(epoch) != self._epoch:
            self._epoch, self._position = int(epoch), 0

    def state_dict(self) -> dict[str, Any]:
        """Return a JSON-safe snapshot: seed, epoch, position, world size, rank, options."""
        return {
            "format": STATE_FORMAT,
            "seed": self.options.seed,
            "epoch": self._epoch,
            "position": self._position,
            "world_size": self._world,
            "rank": self._rank,
            "num_records": self.num_records,
            "options": self.options.fingerprint(),
            **({"elastic": self._rest.saved} if self._rest and self._resuming() else {}),
        }

    def _resuming(self) -> bool:
        """The current epoch is the rest of one begun on another world size."""
        return self._rest is not None and self._rest.epoch == self._epoch

    @staticmethod
    def merge_states(states: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """One state of the whole world from every rank's :meth:`state_dict` (saved at one
        checkpoint): any rank of a new world, of any size, loads it with
        :meth:`load_state_dict` and the new ranks serve what is left of the epoch.

        Raises:
            OptionError: a rank missing or given twice, states of other runs or epochs.
        """
        return merge(states)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict` output (any rank's: positions match across ranks),
        or from :meth:`merge_states` output on any world size.

        Raises:
            OptionError: another format, seed, world size (for one rank's state), dataset
                size or options; a merged state of a stratified or ``locality=`` sampler on
                another world size (or with ranks at different positions).
        """
        state, rest = self._rest_in(state)
        expected = {
            "seed": self.options.seed,
            "world_size": self._world,
            "num_records": self.num_records,
            "options": self.options.fingerprint(),
        }
        self._epoch, self._position = check_state(
            state, expected, self._rank_size if rest is None else rest.rank_size
        )
        self._rest = rest

    def _rest_in(self, state: Mapping[str, Any]) -> tuple[Mapping[str, Any], Remainder | None]:
        """The state to check as one rank's, and the rest of an epoch it resumes on another
        world size (None: a plain resume)."""
        if not isinstance(state, Mapping):
            return state, None
        saved = state.get("elastic")
        if isinstance(saved, Mapping):
            return state, self._remainder({**saved, "epoch": state.get("epoch")})
        if "positions" not in state:
            return state, None
        mine = {**state, "world_size": self._world, "position": 0}
        fixed = {"seed": self.options.seed, "num_records": self.num_records}
        check_state(mine, {**fixed, "options": self.options.fingerprint()}, 0)
        positions = state["positions"]
        if state.get("world_size") == self._world and len(set(map(str, positions))) == 1:
            return {**mine, "position": positions[0]}, None  # lockstep, same world: plain
        if self.options.stratified or self.options.locality:
            kind = "stratified" if self.options.stratified else "locality="
            raise OptionError(
                f"cannot resume a {kind} sampler on world_size {self._world} from ranks of "
                f"world_size {state.get('world_size')!r} at positions {positions!r}: its plan "
                "is laid out for the world size and positions it was saved at; resume it on "
                "that world size from any rank's state, or at the end of the epoch"
            )
        return mine, self._remainder(state)

    def _remainder(self, saved: Mapping[str, Any]) -> Remainder:
        return remainder(saved, self._epoch_size, self.options.pad, self._world)

    def plan(self) -> SamplingPlan:
        """Return the per-class draws, unique records, repeats and fraction seen per epoch."""
        counts = self._source.counts
        draws = counts.copy() if self._quotas is None else self._quotas
        return SamplingPlan.from_quotas(
            mode=self.options.mode or "balanced",
            counts=counts,
            draws=draws,
            rank_size=self._rank_size,
            world_size=self._world,
        )
