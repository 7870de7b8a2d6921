"""TensorFlow adapter: a ``tf.data.Dataset`` of a :class:`datumio.Loader`'s batches.

``tensorflow`` is imported when :func:`tf_dataset` is first called (without it, an
``ImportError`` says how to install it), not when this module is: :func:`output_shapes`
needs no TensorFlow, and importing TensorFlow takes seconds.

.. code-block:: python

    spec = datumio.Transform(size=(224, 224), layout="HWC")
    with datumio.Loader("out.lmdb", 64, transform=spec) as loader:
        ds = tf_dataset(loader)  # ((64, 224, 224, 3) float32, (64,) int64)
        model.fit(ds, epochs=10)

Thread/fork/pickle: the dataset calls the loader from TensorFlow's generator thread; drive
it from one ``tf.data`` pipeline at a time (no ``interleave`` of the same loader).

Resuming: the dataset keeps no place of its own. ``loader.state_dict()`` counts the batches
TensorFlow has pulled, and ``tf.data`` pulls ahead of training (``prefetch``, Keras's
TensorFlow backend), so a state saved mid-epoch skips the batches buffered then. For a
resumable Keras run use :class:`datumio.adapters.keras.KerasDataset`
(``state_dict(trained=...)``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from datumio.adapters._install import missing
from datumio.errors import OptionError
from datumio.loader import Loader

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = ["output_shapes", "tf_dataset"]


def output_shapes(loader: Loader) -> list[tuple[tuple[int | None, ...], str]]:
    """``(shape, dtype)`` of every array of a batch; the batch dimension is None unless
    ``drop_last=True`` makes every batch full."""
    size = loader.options.batch_size if loader.options.drop_last else None
    layout = loader.layout
    out: list[tuple[tuple[int | None, ...], str]] = []
    if layout.images:  # a dataset without images: batches start with the labels
        out.append(((size, *layout.sample_shape), str(np.dtype(layout.dtype))))
    out.append(((size,), "int64"))
    out.extend(((size, *shape), str(np.dtype(dtype))) for shape, dtype in layout.fields)
    out.extend(((size,), "int64") for _ in loader.options.extras)
    return out


def tf_dataset(loader: Loader) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` over ``loader`` built with ``from_generator`` and a full
    ``output_signature`` (images, labels, any record fields and extras, in the order of
    ``loader.batch_names``; see :func:`output_shapes`).

    Each pass over the dataset is one pass of ``iter(loader)``: the rest of the current
    epoch, then the loader moves to the next epoch, so ``model.fit(ds, epochs=N)`` sees N
    epochs of the loader's plan. The numpy batches are handed to TensorFlow as they are;
    the slot stays in use while TensorFlow holds the arrays.

    Raises:
        OptionError: ``loader`` is not a datumio Loader.
        ImportError: TensorFlow is not installed (the text says how to install it).
    """
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise missing(__name__, "tensorflow", exc) from exc

    if not isinstance(loader, Loader):
        raise OptionError(f"tf_dataset wraps a datumio.Loader, got {type(loader).__name__}")
    signature = tuple(
        tf.TensorSpec(shape=shape, dtype=tf.as_dtype(dtype))
        for shape, dtype in output_shapes(loader)
    )

    def batches() -> Iterator[tuple[np.ndarray, ...]]:
        yield from loader

    return tf.data.Dataset.from_generator(batches, output_signature=signature)
