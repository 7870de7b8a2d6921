"""``len(loader)`` and ``loader.batches_left`` after a mid-epoch resume."""

from __future__ import annotations

import json
from pathlib import Path

import datumio

BATCH = 2


def _loader(path: Path) -> datumio.Loader:
    return datumio.Loader(path, BATCH, workers=1, seed=7, extras=("ids",))


def test_a_resumed_epoch_counts_and_yields_what_is_left(tiny_lmdb: Path) -> None:
    with _loader(tiny_lmdb) as first:
        whole = len(first)
        assert whole == first.batches_left == 4
        it = iter(first)
        next(it)
        assert (len(first), first.batches_left) == (whole, whole - 1)  # len holds in a loop
        next(it)
        state = json.loads(json.dumps(first.state_dict()))
        rest = [b[-1].tolist() for b in it]
    with _loader(tiny_lmdb) as resumed:
        resumed.load_state_dict(state)
        assert len(resumed) == resumed.batches_left == whole - 2
        got = [b[-1].tolist() for b in resumed]
        assert got == rest and len(got) == whole - 2
        assert len(resumed) == resumed.batches_left == whole  # the next epoch is whole
        assert len(list(resumed)) == whole
        resumed.load_state_dict(state)
        resumed.set_epoch(3)
        assert len(resumed) == whole
