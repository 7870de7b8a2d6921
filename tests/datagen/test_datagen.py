"""datumio.datagen: the original BatchGenerator / DataGenerator on the new engine."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from datumio.datagen import BatchGenerator, DataGenerator, img_loader
from datumio.errors import OptionError, WorkerError

RNG_AUG = {
    "output_shape": (12, 12),
    "zoom_range": (0.9, 1.1),
    "rotation_range": (-20, 20),
    "translation_range": (-2, 2),
    "do_flip_lr": True,
}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (50, 16, 16, 3), dtype=np.uint8)
    y = np.repeat(np.arange(3), [30, 15, 5])
    return X, y


def _all(gen) -> list:
    return list(gen)


def test_plain_batches_are_the_data_in_order(data):
    X, y = data
    batches = _all(BatchGenerator(X, y).get_batch(batch_size=16))
    assert [len(b[0]) for b in batches] == [16, 16, 16, 2]  # the remainder comes last
    assert np.array_equal(np.concatenate([b[0] for b in batches]), X.astype(np.float32))
    assert np.array_equal(np.concatenate([b[1] for b in batches]), y)
    only_x = next(iter(BatchGenerator(X).get_batch(batch_size=8)))
    assert isinstance(only_x, np.ndarray) and only_x.shape == (8, 16, 16, 3)


@pytest.mark.parametrize("axis", [None, 0, (0, 1, 2)])
def test_dataset_zmuv_matches_the_original_formula(data, axis):
    X, _ = data
    gen = BatchGenerator(X, dataset_zmuv=True, dataset_axis=axis)
    mean = X.astype(np.float32).mean(axis)
    std = (X.astype(np.float32) - mean).std(axis)
    np.testing.assert_allclose(gen.mean, mean, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(gen.std, std, rtol=1e-5, atol=1e-3)
    got = np.concatenate(_all(gen.get_batch(batch_size=20)))
    np.testing.assert_allclose(got, (X - mean) / (std + 1e-12), rtol=1e-4, atol=1e-4)


def test_sample_and_batch_zmuv_dtype_and_chw(data):
    X, _ = data
    gen = BatchGenerator(X, sample_zmuv=True, sample_axis=(0, 1), batch_zmuv=True, batch_axis=0)
    got = next(iter(gen.get_batch(batch_size=10, chw_order=True, dtype=np.float64)))
    assert got.shape == (10, 3, 16, 16) and got.dtype == np.float64
    x = X[:10].astype(np.float32)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    x = x / (x.std(axis=(1, 2), keepdims=True) + 1e-12)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-12)
    np.testing.assert_allclose(got, x.transpose(0, 3, 1, 2), rtol=1e-4, atol=1e-4)
    with pytest.raises(OptionError, match="dataset_axis"):
        BatchGenerator(X, dataset_zmuv=True, dataset_axis=1)


def test_augmentation_is_deterministic_in_rng_seed_on_any_worker_count(data):
    X, y = data
    gen = BatchGenerator(X, y, aug_params={"rotation": 90}, rng_aug_params=RNG_AUG)
    kw = {"batch_size": 8, "shuffle": True, "rng_seed": 11}
    here = _all(gen.get_batch(**kw, workers=0))
    pooled = _all(gen.get_batch(**kw, workers=2, buffer_size=3))
    assert len(here) == len(pooled) == 7
    for (a, ya), (b, yb) in zip(here, pooled, strict=True):
        assert a.shape[1:] == (12, 12, 3)
        assert np.array_equal(a, b) and np.array_equal(ya, yb)
    other = _all(gen.get_batch(batch_size=8, shuffle=True, rng_seed=12, workers=0))
    assert not np.array_equal(here[0][0], other[0][0])
    labels = np.concatenate([b[1] for b in here])
    assert sorted(labels.tolist()) == sorted(y.tolist())  # a permutation of the records


def test_static_augmentation_matches_transform_image(data):
    from datumio.transforms import transform_image

    X, _ = data
    params = {"rotation": 30, "zoom": 1.2, "flip_lr": True, "output_shape": (10, 10)}
    got = next(iter(BatchGenerator(X, aug_params=params).get_batch(batch_size=4)))
    for k in range(4):
        np.testing.assert_allclose(got[k], transform_image(X[k].astype(np.float32), **params))


def test_x_is_shared_once_and_everything_is_released(data):
    X, y = data
    gen = BatchGenerator(X, y, rng_aug_params=RNG_AUG)
    it = gen.get_batch(batch_size=8, workers=2, rng_seed=0)
    next(it)
    mine = [n for n in os.listdir("/dev/shm") if n.startswith(f"datumio_{os.getpid()}_")]
    x_seg = [n for n in mine if n.endswith("_x")]
    assert len(x_seg) == 1 and os.path.getsize(f"/dev/shm/{x_seg[0]}") >= X.nbytes
    it.close()  # leaving early: the leak check after the test sees nothing left
    assert not [n for n in os.listdir("/dev/shm") if n in mine]


def test_auto_workers_rule(data):
    X, _ = data
    plain, augmented = BatchGenerator(X), BatchGenerator(X, rng_aug_params=RNG_AUG)
    assert plain._choose_workers(None, 10_000) == 0  # nothing to do per sample
    assert augmented._choose_workers(None, 100) == 0  # too small to pay for processes
    assert augmented._choose_workers(None, 10_000) == min(4, os.cpu_count() or 1)
    assert augmented._choose_workers(3, 10) == 3
    with pytest.raises(OptionError, match=r"workers=-1; give an int >= 0"):
        augmented.get_batch(workers=-1)


def test_resample_dataset_balances_labels(data):
    X, y = data
    gen = BatchGenerator(X, y)
    idx = gen.resample_dataset(y, "balanced", rng_seed=0)
    assert np.bincount(y[idx]).tolist() == [17, 17, 16]
    labels = np.concatenate([b[1] for b in gen.get_batch(batch_size=16)])
    assert np.array_equal(labels, y[idx])
    onehot = np.eye(3)[y]
    gen2 = BatchGenerator(X, onehot)
    idx2 = gen2.resample_dataset(None, {0: 1.0, 2: 1.0}, sample_fraction=2.0, rng_seed=1)
    assert len(idx2) == 100 and set(y[idx2].tolist()) == {0, 2}
    assert np.array_equal(idx, gen.resample_dataset(y, "balanced", rng_seed=0))


def _write_files(root, X) -> list[str]:
    paths = []
    for i, x in enumerate(X):
        path = root / (f"{i:03d}.png" if i % 5 else f"{i:03d}.npy")
        if i % 5:
            Image.fromarray(x).save(path)
        else:
            np.save(path, x)
        paths.append(str(path))
    return paths


def scaled_loader(path: str, scale: float = 1.0) -> np.ndarray:
    return img_loader(path).astype(np.float32) * scale


def test_data_generator_files_pool_and_custom_loader(data, tmp_path):
    X, y = data
    paths = _write_files(tmp_path, X)
    gen = DataGenerator(np.array(paths), y, dataset_zmuv=True, dataset_axis=0)
    np.testing.assert_allclose(gen.mean, X.astype(np.float32).mean(0), rtol=1e-5)
    here = _all(gen.get_batch(batch_size=16, workers=0))
    pooled = _all(gen.get_batch(batch_size=16, workers=2))
    for (a, ya), (b, yb) in zip(here, pooled, strict=True):
        assert np.array_equal(a, b) and np.array_equal(ya, yb)
    custom = DataGenerator(paths, data_loader=scaled_loader, dl_kwargs={"scale": 0.5})
    first = next(iter(custom.get_batch(batch_size=4, workers=1)))
    np.testing.assert_allclose(first, X[:4] * 0.5)


def test_worker_errors_reach_the_caller(data, tmp_path):
    X, y = data
    paths = _write_files(tmp_path, X[:10])
    paths[6] = str(tmp_path / "missing.png")
    gen = DataGenerator(paths, y[:10])
    with pytest.raises(WorkerError, match=r"missing\.png"):
        _all(gen.get_batch(batch_size=4, workers=2))
    with pytest.raises(FileNotFoundError):
        _all(gen.get_batch(batch_size=4, workers=0))


def test_bad_options(data):
    X, y = data
    with pytest.raises(OptionError, match="y has"):
        BatchGenerator(X, y[:3])
    with pytest.raises(OptionError, match="batch_size"):
        BatchGenerator(X).get_batch(batch_size=0)
    with pytest.raises(OptionError, match="rng"):
        BatchGenerator(X, rng_aug_params={"rng": np.random})
