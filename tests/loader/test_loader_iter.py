"""The loader with real worker processes: contents, order, determinism, resume, slots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import datumio
from datumio.augment import Transform, apply, sample_rng
from datumio.errors import LoaderError, OptionError
from datumio.loader import Loader
from datumio.loader.slots import lease_of

pytestmark = pytest.mark.timeout(60)

SPEC = Transform(size=(24, 24), resize=32, flip=0.5)


def _epoch(loader: Loader) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    xs, ys, ids = [], [], []
    for x, y, i in loader:
        xs.append(x.copy())
        ys.append(y.copy())
        ids.append(i.copy())
    return xs, ys, ids


def test_batches_match_sampler_and_in_process_transform(small_lmdb: Path) -> None:
    ds = datumio.open(small_lmdb)
    with Loader(small_lmdb, 4, transform=SPEC, workers=2, extras=("ids",), seed=7) as loader:
        assert len(loader) == len(ds) // 4
        xs, ys, ids = _epoch(loader)
        assert loader.epoch == 1 and loader.position == 0
        assert loader.stats.batches == len(loader) and loader.stats.replaced == 0
    spec = loader.transform
    expected_ids = loader.sampler.epoch_ids(0)[: 4 * len(xs)]
    np.testing.assert_array_equal(np.concatenate(ids), expected_ids)
    np.testing.assert_array_equal(np.concatenate(ys), ds.labels[expected_ids])
    for b, x in enumerate(xs):
        assert x.shape == (4, 3, 24, 24) and x.dtype == np.float32
        for k in range(4):
            out = np.empty((3, 24, 24), np.float32)
            rid = int(ids[b][k])
            apply(spec, ds.read(rid), sample_rng(7, 0, 4 * b + k), out, shape=ds.shape(rid))
            np.testing.assert_array_equal(x[k], out)


def test_same_pixels_whatever_the_worker_count(small_lmdb: Path) -> None:
    runs = []
    for workers in (1, 3):
        with Loader(small_lmdb, 5, transform=SPEC, workers=workers, seed=3) as loader:
            loader.set_epoch(2)
            runs.append(_epoch_pairs(loader))
    for (xa, ya), (xb, yb) in zip(*runs, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def _epoch_pairs(loader: Loader) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.copy(), y.copy()) for x, y in loader]


def test_spawn_start_method_gives_the_same_pixels(small_lmdb: Path) -> None:
    spec = Transform(size=(20, 20), flip=1.0, layout="HWC", dtype="uint8")
    out = []
    for method in ("spawn", "forkserver"):
        with Loader(small_lmdb, 6, transform=spec, workers=1, start_method=method) as loader:
            out.append(_epoch_pairs(loader))
    for (xa, _), (xb, _) in zip(*out, strict=True):
        assert xa.dtype == np.uint8 and xa.shape == (6, 20, 20, 3)
        np.testing.assert_array_equal(xa, xb)


def test_resume_mid_epoch_gives_the_same_batches(small_lmdb: Path) -> None:
    with Loader(small_lmdb, 3, transform=SPEC, workers=2, seed=11) as loader:
        full = _epoch_pairs(loader) + _epoch_pairs(loader)  # epochs 0 and 1
    with Loader(small_lmdb, 3, transform=SPEC, workers=2, seed=11) as loader:
        it = iter(loader)
        first = [next(it) for _ in range(2)]
        state = loader.state_dict()
        del it, first
    assert state["position"] == 6 and state["epoch"] == 0
    with Loader(small_lmdb, 3, transform=SPEC, workers=1, seed=11) as loader:
        loader.load_state_dict(state)
        rest = _epoch_pairs(loader) + _epoch_pairs(loader)
    assert len(rest) == len(full) - 2
    for (xa, ya), (xb, yb) in zip(full[2:], rest, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_slot_lifetime_follows_references(small_lmdb: Path) -> None:
    spec = Transform(size=(8, 8), dtype="uint8", layout="HWC")
    with Loader(small_lmdb, 2, transform=spec, workers=1, prefetch=1, slots=3) as loader:
        it = iter(loader)
        held = next(it)
        snapshot = held[0].copy()
        view = held[0][1:]  # a view keeps the slot as well
        del held
        for _ in range(4):  # several batches go through the other slots
            next(it)
        np.testing.assert_array_equal(view, snapshot[1:])
        # Hold every slot: the loader says so instead of waiting forever.
        more = [next(it), next(it)]
        with pytest.raises(LoaderError, match="slots are held"):
            next(it)
        del view, more, it


def test_release_and_copy(small_lmdb: Path) -> None:
    spec = Transform(size=(8, 8), dtype="uint8", layout="HWC")
    with Loader(small_lmdb, 2, transform=spec, workers=1, prefetch=1, slots=2) as loader:
        kept = []
        for batch in loader:
            kept.append(batch)
            loader.release(batch)  # without this the third batch would find no slot
        assert len(kept) == len(loader)
    with Loader(small_lmdb, 2, transform=spec, workers=1, slots=1, copy=True) as loader:
        owned = [b for b in loader]  # one slot, every batch kept: only copies can do that
        assert len(owned) == len(loader)
        assert all(a.flags.owndata and lease_of(a) is None for b in owned for a in b)
        assert len({b[0].ctypes.data for b in owned}) == len(owned)


def test_balanced_sampling_and_extras(small_lmdb: Path) -> None:
    ds = datumio.open(small_lmdb)
    with Loader(
        ds, 7, transform=SPEC, epoch_size=210, drop_last=False, extras=("ids",), workers=2
    ) as loader:
        labels = np.concatenate([y.copy() for _, y, _ in loader])
    assert len(labels) == 210
    np.testing.assert_array_equal(np.bincount(labels), [70, 70, 70])


def test_bad_options_name_the_parameter(small_lmdb: Path) -> None:
    with pytest.raises(OptionError, match="workers"):
        Loader(small_lmdb, 4, transform=SPEC, workers=0)
    with pytest.raises(OptionError, match="start_method"):
        Loader(small_lmdb, 4, transform=SPEC, start_method="thread")


def test_default_output_for_mixed_sizes_is_a_224_centre_crop(small_lmdb: Path) -> None:
    with Loader(small_lmdb, 4, workers=1) as loader:  # the stored sizes differ
        images, labels = next(iter(loader))
    assert images.shape == (4, 224, 224, 3) and images.dtype == np.uint8
    assert labels.shape == (4,)
