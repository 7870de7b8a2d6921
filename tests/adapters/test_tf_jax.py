"""datumio.adapters.tf and .jax: run only where TensorFlow / JAX are installed."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import datumio
from datumio.adapters.tf import output_shapes

SPEC = datumio.Transform(size=(16, 16), layout="HWC")


def test_output_shapes_without_tensorflow(shapes_lmdb):
    with datumio.Loader(shapes_lmdb, 4, workers=1, transform=SPEC, extras=("ids",)) as loader:
        assert output_shapes(loader) == [
            ((4, 16, 16, 3), "float32"),
            ((4,), "int64"),
            ((4,), "int64"),
        ]


def test_tf_dataset(shapes_lmdb):
    tf = pytest.importorskip("tensorflow")
    from datumio.adapters.tf import tf_dataset

    with datumio.Loader(shapes_lmdb, 4, workers=1, transform=SPEC, copy=True) as loader:
        expected = list(loader)
        loader.set_epoch(0)
        ds = tf_dataset(loader)
        assert ds.element_spec[0] == tf.TensorSpec((4, 16, 16, 3), tf.float32)
        got = [(a.numpy(), b.numpy()) for a, b in ds]
    assert len(got) == len(expected)
    assert all(np.array_equal(g[0], e[0]) for g, e in zip(got, expected, strict=True))


def test_jax_loader(shapes_lmdb):
    pytest.importorskip("jax")
    from datumio.adapters.jax import jax_loader, process_rank

    assert process_rank() == (0, 1)
    with jax_loader(shapes_lmdb, 4, workers=1, transform=SPEC) as loader:
        assert loader.sampler.world_size == 1
        images, labels = next(iter(loader))
        assert images.shape == (4, 16, 16, 3) and labels.dtype == np.int64


def test_jax_loader_is_a_loader_with_jax_ranks_and_every_loader_keyword(shapes_lmdb):
    """The keywords are the Loader's (sampling ones included); rank= and world_size=
    given replace the JAX process's, and "balanced" gives way to weights=."""
    pytest.importorskip("jax")
    from datumio.adapters.jax import jax_loader

    kw = {"workers": 1, "transform": SPEC, "seed": 3, "copy": True, "epoch_size": 20}
    with datumio.Loader(shapes_lmdb, 4, rank=1, world_size=2, **kw) as loader:
        expected = list(loader)
    with jax_loader(shapes_lmdb, 4, rank=1, world_size=2, **kw) as loader:
        assert (loader.sampler.rank, loader.sampler.world_size) == (1, 2)
        got = list(loader)
    assert len(got) == len(expected) == 2  # 20 draws, 10 on this rank, batches of 4
    for g, e in zip(got, expected, strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(g, e, strict=True))
    weights = {"star": 1.0}
    with jax_loader(shapes_lmdb, 4, sampling="balanced", weights=weights, **kw) as loader:
        assert loader.sampler.options.mode == "weights"
        labels = np.concatenate([b[1] for b in loader])
    assert set(labels.tolist()) == {loader.dataset.class_names.index("star")}


KERAS_ON_TF = """
import sys, warnings
import keras, numpy as np, datumio
from datumio.adapters.keras import KerasDataset

warnings.simplefilter("error", UserWarning)  # a seek warning would fail the run
spec = datumio.Transform(size=(16, 16), layout="HWC")
with datumio.Loader(sys.argv[1], 4, workers=1, transform=spec, seed=5) as loader:
    ds = KerasDataset(loader)
    model = keras.Sequential([
        keras.Input((16, 16, 3)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(4),
    ])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(ds, epochs=2, shuffle=False, verbose=0)
    print(len(history.history["loss"]), ds.seeks, loader.epoch)
"""


def test_keras_fit_on_the_tensorflow_backend(shapes_lmdb):
    """Keras's TF backend reads batches 0 and 1 for the signature, then trains from 0."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("keras")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", KERAS_ON_TF, str(shapes_lmdb)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    epochs, seeks, loader_epoch = (int(v) for v in done.stdout.split()[-3:])
    assert epochs == 2 and seeks <= 1 and loader_epoch == 2
