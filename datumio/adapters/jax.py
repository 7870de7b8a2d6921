"""JAX adapter: numpy batches for this JAX process, from a Loader split across processes.

``jax`` is imported only inside the functions. In multi-host JAX every process runs the
same program and feeds its local devices; :func:`jax_loader` gives process ``p`` of ``P``
the disjoint positions ``p, p + P, ...`` of each epoch plan (``rank=jax.process_index()``,
``world_size=jax.process_count()``), so the processes together see every position once.

.. code-block:: python

    loader = jax_loader("out.lmdb", 64, sampling="balanced", transform=spec)
    with loader:
        for images, labels in loader:  # numpy, 64 records of this process
            batch = jax.device_put(images)  # or jax.make_array_from_process_local_data
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from datumio.loader import Loader
from datumio.sampling import Sampler
from datumio.shards.dataset import Dataset

__all__ = ["jax_loader", "process_rank"]


def process_rank() -> tuple[int, int]:
    """``(jax.process_index(), jax.process_count())``."""
    import jax

    return int(jax.process_index()), int(jax.process_count())


def jax_loader(
    dataset: Dataset | str | os.PathLike[str],
    batch_size: int,
    *,
    sampling: str | None = "balanced",
    weights: Mapping[int, float] | None = None,
    power: float | None = None,
    epoch_size: int | None = None,
    seed: int = 0,
    pad: bool = False,
    **loader_kwargs: Any,
) -> Loader:
    """A :class:`datumio.Loader` yielding this JAX process's share of every epoch.

    Args:
        dataset: a :class:`~datumio.Dataset` or its directory.
        batch_size: records per batch on this process (the global batch is
            ``batch_size * jax.process_count()``).
        sampling, weights, power, epoch_size, seed, pad: the :class:`~datumio.Sampler`'s
            options; every process must pass the same values.
        loader_kwargs: other :class:`~datumio.Loader` keywords (``transform``, ``workers``...).

    Returns:
        A Loader (use it as a context manager, or ``close()`` it).
    """
    rank, world = process_rank()
    ds = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
    if sampling == "balanced" and (weights is not None or power is not None):
        sampling = None
    sampler = Sampler(
        ds,
        sampling,
        weights=weights,
        power=power,
        epoch_size=epoch_size,
        seed=seed,
        rank=rank,
        world_size=world,
        pad=pad,
    )
    return Loader(ds, batch_size, sampler=sampler, seed=seed, **loader_kwargs)
