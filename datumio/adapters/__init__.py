"""Framework adapters over :class:`datumio.Loader` and :class:`datumio.Sampler`.

Each submodule imports its framework when it is imported (``tf`` when ``tf_dataset`` is
first called), and says how to install it when it is missing; ``import datumio`` (or
``import datumio.adapters``) imports no framework at all:

* :mod:`datumio.adapters.torch`: ``TorchIterable`` (an ``IterableDataset`` for
  ``DataLoader(ds, batch_size=None)``, zero-copy tensors), ``TorchSampler`` (a
  ``torch.utils.data.Sampler`` for your own ``Dataset``) and ``MapDataset`` with ``collate``
  (a map-style ``Dataset`` applying a ``Transform`` per record).
* :mod:`datumio.adapters.keras`: ``KerasDataset``, a Keras 3 ``PyDataset``.
* :mod:`datumio.adapters.tf`: ``tf_dataset(loader)``, a ``tf.data.Dataset`` with a full
  ``output_signature``.
* :mod:`datumio.adapters.jax`: ``jax_loader(...)``, a Loader whose ranks are JAX processes.

See docs/adapters.md.
"""

__all__: list[str] = []
