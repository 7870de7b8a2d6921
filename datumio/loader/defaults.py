"""The dataset, the transform and the sampler of a Loader: the ones given, checked, or its
defaults.

The dataset is the one given, or opened from a path or URL, at the ``split`` asked for.
Without a transform the workers give the stored pixels (a 224x224 centre crop when stored
sizes differ, over the whole dataset: every split gets the same size); a given one is
resolved against the dataset's statistics. Without a sampler one is built from the sampler
keywords; a given one must cover the dataset.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from datumio.augment.spec import Transform
from datumio.errors import FormatError, OptionError
from datumio.loader.fields import balance_groups
from datumio.loader.options import LoaderOptions
from datumio.remote import open_dataset
from datumio.sampling import Sampler
from datumio.shards.dataset import Dataset

#: Output size when no transform is given and stored sizes differ (the ImageNet convention).
DEFAULT_SIZE = (224, 224)


def loader_dataset(given: Dataset | str | os.PathLike[str], split: str | None) -> Dataset:
    """The Loader's dataset: ``given``, or the dataset at that path (or URL, through its
    cache), at stored split ``split`` (None: as given).

    Raises:
        OptionError: no split of that name, or a Dataset given that is another split.
    """
    if not isinstance(given, Dataset):
        return open_dataset(given, split=split)
    if split is None or split == given.split:
        return given
    if given.split is not None:
        raise OptionError(
            f"split={split!r} but the Dataset given is split {given.split!r}: give the path, "
            f"or the Dataset of that split (ds.with_split({split!r}))"
        )
    return given.with_split(split)


def default_transform(dataset: Dataset) -> Transform:
    """The stored pixels as uint8 HWC when every record has one size, else a centre crop.

    A dataset of mixed stored sizes is not an error: every record is resized so that its
    shorter side is 224 (up or down) and centre-cropped to 224x224, uint8 HWC (the ImageNet
    convention, :data:`DEFAULT_SIZE`), so ``Loader(path, batch_size)`` always yields batches.
    An empty dataset gets the same 224x224 spec. Pass a :class:`Transform` to choose the
    size, flips, normalisation and layout (docs/loader.md, ``transform`` option). A split
    gets the whole dataset's, so that every split of it gives batches of one size.
    """
    shapes = np.asarray(dataset.whole().shapes[:, :2])
    if not len(shapes):
        return Transform(size=DEFAULT_SIZE, layout="HWC", dtype="uint8")
    low, high = shapes.min(axis=0), shapes.max(axis=0)
    _check_sizes(dataset, low, high)
    if bool((low == high).all()):
        return Transform(size=(int(low[0]), int(low[1])), layout="HWC", dtype="uint8")
    return Transform(size=DEFAULT_SIZE, layout="HWC", dtype="uint8")


def _check_sizes(dataset: Dataset, low: np.ndarray, high: np.ndarray) -> None:
    """The stored (height, width) range must be the one the manifest recorded at ingest: the
    output size depends on it, so one damaged entry of ``shapes.npy`` must not change it."""
    stats = dataset.manifest.stats
    sizes = {} if stats is None else stats.stored_size
    try:
        recorded = [(sizes[k]["min"], sizes[k]["max"]) for k in ("height", "width")]
    except (KeyError, TypeError):
        return  # no stored-size statistics to compare with
    found = [(int(low[k]), int(high[k])) for k in (0, 1)]
    if [(float(a), float(b)) for a, b in recorded] != [(float(a), float(b)) for a, b in found]:
        raise FormatError(
            f"{dataset.path}: index/shapes.npy gives stored heights {found[0]} and widths "
            f"{found[1]} (min, max), the manifest {recorded[0]} and {recorded[1]}: the index is "
            "damaged (run datumio verify)"
        )


def no_image_transform(dataset: Dataset, transform: Transform | None, decode: str) -> Transform:
    """The placeholder transform of a dataset without images (workers apply none).

    Raises:
        OptionError: a ``transform`` or ``decode="device"`` given: there is no image.
    """
    if transform is not None or decode == "device":
        given = "transform=" if transform is not None else 'decode="device"'
        raise OptionError(
            f"{given} but {dataset.path} has no images (its records are a label and fields): "
            f"leave {given.rstrip('=')} out; batches are (labels, *fields, *extras)"
        )
    return Transform(size=(1, 1), layout="HWC", dtype="uint8")


def loader_sampler(
    dataset: Dataset, sampler: Sampler | None, options: LoaderOptions, sampling: Mapping[str, Any]
) -> Sampler:
    """The Loader's sampler: ``sampler`` checked against ``dataset``, or one built from the
    sampler keywords given (``sampling``) and ``balance_by``.

    Raises:
        OptionError: a sampler of another dataset, or sampler keywords beside a ready one.
    """
    if sampler is None:
        by = options.balance_by
        groups = None if by is None else balance_groups(dataset, by)
        return Sampler(dataset, groups=groups, options=options.sampler_options(sampling))
    if sampler.num_records != len(dataset):
        raise OptionError(
            f"the sampler covers {sampler.num_records} records but the dataset has "
            f"{len(dataset)}; build the Sampler from this dataset"
        )
    given = sorted({*sampling, *(["balance_by"] if options.balance_by is not None else [])})
    if given:
        raise OptionError(
            f"{', '.join(given)} given with a ready sampler: build the Sampler with them instead"
        )
    return sampler


def resolved_transform(
    dataset: Dataset, transform: Transform | None, options: LoaderOptions
) -> tuple[Transform, int]:
    """(the transform the workers apply, resolved against the dataset's statistics; its
    channels). A dataset without images gets a placeholder and 0 channels."""
    if not dataset.has_images:
        return no_image_transform(dataset, transform, options.decode), 0
    channels = dataset.manifest.channels or dataset.shape(0)[2]
    spec = transform if transform is not None else default_transform(dataset)
    stats = dataset.manifest.stats
    mean_std = None
    if stats is not None and stats.mean is not None and stats.std is not None:
        mean_std = {"mean": stats.mean, "std": stats.std}
    return spec.resolved(mean_std, channels), channels
