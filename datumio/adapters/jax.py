"""JAX adapter: numpy batches for this JAX process, from a Loader split across processes.

Importing this module imports ``jax`` (without it, an ``ImportError`` says how to install
it); ``import datumio`` and ``import datumio.adapters`` never do. In multi-host JAX every
process runs the same program and feeds its local devices; :func:`jax_loader` gives
process ``p`` of ``P`` the disjoint positions ``p, p + P, ...`` of each epoch plan
(``rank=jax.process_index()``, ``world_size=jax.process_count()``), so the processes
together see every position once.

.. code-block:: python

    loader = jax_loader("out.lmdb", 64, sampling="balanced", transform=spec)
    with loader:
        for images, labels in loader:  # numpy, 64 records of this process
            batch = jax.device_put(images)  # or jax.make_array_from_process_local_data
"""

from __future__ import annotations

import os
from typing import Unpack

from datumio.adapters._install import missing
from datumio.augment import Transform
from datumio.loader import Loader, LoaderKeywords, LoaderOptions
from datumio.shards.dataset import Dataset

try:
    import jax
except ImportError as exc:
    raise missing(__name__, "jax", exc) from exc

__all__ = ["jax_loader", "process_rank"]


def process_rank() -> tuple[int, int]:
    """``(jax.process_index(), jax.process_count())``."""
    return int(jax.process_index()), int(jax.process_count())


def jax_loader(
    dataset: Dataset | str | os.PathLike[str],
    batch_size: int,
    *,
    transform: Transform | None = None,
    options: LoaderOptions | None = None,
    **keywords: Unpack[LoaderKeywords],
) -> Loader:
    """A :class:`datumio.Loader` yielding this JAX process's share of every epoch.

    Args:
        dataset: a :class:`~datumio.Dataset` or its directory.
        batch_size: records per batch on this process (the global batch is
            ``batch_size * jax.process_count()``).
        transform: what the workers do to each record (:class:`~datumio.Transform`).
        options: a :class:`~datumio.LoaderOptions`, the keywords going on top.
        keywords: the :class:`~datumio.Loader`'s (``workers``, ``sampling``, ``weights``,
            ``power``, ``epoch_size``, ``seed``, ``pad``...); every process must pass the
            same sampling options and seed. ``rank`` and ``world_size`` default to
            :func:`process_rank`'s.

    Returns:
        A Loader (use it as a context manager, or ``close()`` it).

    Raises:
        TypeError: a keyword that is not a Loader option (with the closest name).
        OptionError: a bad option, naming it.
    """
    rank, world = process_rank()
    keywords.setdefault("rank", rank)
    keywords.setdefault("world_size", world)
    return Loader(dataset, batch_size, transform=transform, options=options, **keywords)
