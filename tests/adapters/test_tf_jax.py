"""datumio.adapters.tf and .jax: run only where TensorFlow / JAX are installed."""

from __future__ import annotations

import numpy as np
import pytest

import datumio
from datumio.adapters.tf import output_shapes

SPEC = datumio.Transform(size=(16, 16), layout="HWC")


def test_output_shapes_without_tensorflow(small_dataset):
    with datumio.Loader(small_dataset, 4, workers=1, transform=SPEC, extras=("ids",)) as loader:
        assert output_shapes(loader) == [
            ((4, 16, 16, 3), "float32"),
            ((4,), "int64"),
            ((4,), "int64"),
        ]


def test_tf_dataset(small_dataset):
    tf = pytest.importorskip("tensorflow")
    from datumio.adapters.tf import tf_dataset

    with datumio.Loader(small_dataset, 4, workers=1, transform=SPEC, copy=True) as loader:
        expected = list(loader)
        loader.set_epoch(0)
        ds = tf_dataset(loader)
        assert ds.element_spec[0] == tf.TensorSpec((4, 16, 16, 3), tf.float32)
        got = [(a.numpy(), b.numpy()) for a, b in ds]
    assert len(got) == len(expected)
    assert all(np.array_equal(g[0], e[0]) for g, e in zip(got, expected, strict=True))


def test_jax_loader(small_dataset):
    pytest.importorskip("jax")
    from datumio.adapters.jax import jax_loader, process_rank

    assert process_rank() == (0, 1)
    with jax_loader(small_dataset, 4, workers=1, transform=SPEC) as loader:
        assert loader.sampler.world_size == 1
        images, labels = next(iter(loader))
        assert images.shape == (4, 16, 16, 3) and labels.dtype == np.int64
