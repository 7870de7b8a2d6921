"""An epoch iterator left early (``break``, ``close()``, dropped) gives back every slot.

Batches that a worker has finished but the loop never yielded hold slots; the iterator's
end must return them, or the ring shrinks with each abandoned epoch until the loader can
prefetch nothing (docs/loader.md, "Slots").
"""

from __future__ import annotations

import collections
import functools
import itertools
from collections.abc import Iterator
from pathlib import Path

import loader_hooks
import pytest
from leaks import wait_until

from datumio.augment import Transform
from datumio.loader import Loader
from datumio.loader.messages import BatchDone

pytestmark = pytest.mark.timeout(60)

BATCH, PREFETCH, SLOTS = 2, 6, 8


def free_slots(loader: Loader) -> int:
    """Slots the ring could hand out now (free, or given back by a dropped batch)."""
    assert loader._runtime is not None
    ring = loader._runtime.ring
    return len(ring._free) + len(ring.returned)


def unyielded(it: Iterator[object]) -> list[int]:
    """Batches of a suspended epoch iterator that are finished but not yet yielded."""
    pending = it.gi_frame.f_locals["pending"]  # type: ignore[attr-defined]
    return sorted(b for b, msg in pending.items() if isinstance(msg, BatchDone))


def abandon_with_finished_batches(loader: Loader, marks: Path, how: str) -> None:
    """Start an epoch, wait until the worker has filled every prefetched batch, step on until
    the loop has received finished batches it has not yielded, and leave the iterator."""
    it = iter(loader)
    taken = [next(it)]
    # Batches 0..PREFETCH-1 are planned; the worker has filled them when it has
    # transformed all their images (a marker file per image, not a sleep).
    assert wait_until(lambda: len(list(marks.iterdir())) >= PREFETCH * BATCH, 30)
    # The next step that finds its batch missing receives every finished one at once.
    while not (waiting := unyielded(it)) and len(taken) < PREFETCH - 1:
        taken.append(next(it))
    assert waiting, "no finished batch was waiting: the test would prove nothing"
    del taken
    if how == "close":
        it.close()
    else:
        del it  # the generator's finaliser runs now (reference counting)
    for name in marks.iterdir():
        name.unlink()


@pytest.mark.parametrize("how", ["close", "drop"])
def test_abandoned_iterator_gives_back_the_slots_of_finished_batches(
    small_lmdb: Path, tmp_path: Path, how: str
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    count = functools.partial(loader_hooks.count_calls, folder=str(marks))
    spec = Transform(size=(8, 8), dtype="uint8", layout="HWC", user_fn=count)
    with Loader(
        small_lmdb, BATCH, transform=spec, workers=1, prefetch=PREFETCH, slots=SLOTS,
        epoch_size=40,
    ) as loader:  # fmt: skip
        for _ in range(3):  # a leak would add up with every abandoned epoch
            abandon_with_finished_batches(loader, marks, how)
            # Every slot is free again, but those of batches a worker still fills.
            assert free_slots(loader) + len(loader._inflight) == SLOTS
        # The next epoch can hold as many batches at once as there are slots...
        it = iter(loader)
        held = list(itertools.islice(it, SLOTS))
        assert len(held) == SLOTS
        del held
        collections.deque(it, maxlen=0)  # the rest of the epoch, keeping no batch
        # ...and once it is over with nothing referenced, every slot is free again.
        assert free_slots(loader) == SLOTS
