"""datumio.adapters.keras: in-order streaming, exact random access, epochs, fit()."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import datumio
from datumio.errors import OptionError

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported
keras = pytest.importorskip("keras")
pytest.importorskip("torch")

from datumio.adapters.keras import KerasDataset  # noqa: E402

SPEC = datumio.Transform(size=(16, 16), layout="HWC", flip=0.5)


def _loader(path: str | Path, **kw) -> datumio.Loader:
    return datumio.Loader(path, 4, **{"workers": 1, "transform": SPEC, "seed": 5, **kw})


def _epochs(path: str | Path, n: int) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    with _loader(path, copy=True) as loader:
        return [[(a, b) for a, b in loader] for _ in range(n)]


def test_in_order_is_the_loader_stream_and_epochs_advance(shapes_lmdb):
    expected = _epochs(shapes_lmdb, 2)
    with _loader(shapes_lmdb) as loader:
        ds = KerasDataset(loader)
        assert len(ds) == ds.num_batches == len(loader)
        for epoch in range(2):
            for i in range(len(ds)):
                images, labels = ds[i]
                assert np.array_equal(images, expected[epoch][i][0])
                assert np.array_equal(labels, expected[epoch][i][1])
            ds.on_epoch_end()
        assert ds.seeks == 0
        ds.close()


def test_random_access_is_exact_and_warns_once(shapes_lmdb):
    expected = _epochs(shapes_lmdb, 1)[0]
    with _loader(shapes_lmdb) as loader:
        ds = KerasDataset(loader)
        with pytest.warns(UserWarning, match="shuffle=False"):
            got = ds[5]
        assert np.array_equal(got[0], expected[5][0])
        assert ds[5] is got  # the same index again: no work
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once only
            for i in (2, 9, 0, 1):
                assert np.array_equal(ds[i][0], expected[i][0])
        assert ds.seeks == 4  # 5, 2, 9, 0 (1 follows 0 in order)
        with pytest.raises(IndexError):
            ds[len(ds)]
        ds.close()


def test_fit_on_the_torch_backend(shapes_lmdb):
    with _loader(shapes_lmdb) as loader:
        ds = KerasDataset(loader)
        model = keras.Sequential(
            [
                keras.Input((16, 16, 3)),
                keras.layers.Conv2D(4, 3, activation="relu"),
                keras.layers.GlobalAveragePooling2D(),
                keras.layers.Dense(4),
            ]
        )
        model.compile(
            "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False
        )
        history = model.fit(ds, epochs=2, shuffle=False, verbose=0)
        assert len(history.history["loss"]) == 2
        assert ds.seeks == 0
        assert loader.epoch == 2
        ds.close()


def test_keras_workers_are_refused(shapes_lmdb):
    with _loader(shapes_lmdb) as loader:
        with pytest.raises(OptionError, match="own worker pool"):
            KerasDataset(loader, workers=2)
        with pytest.raises(OptionError, match="own worker pool"):
            KerasDataset(loader, use_multiprocessing=True)
