"""Samples that do not fit together, said so that the user can fix them.

The samples of a pass are stacked into batches (and, for ``dataset_zmuv``, into the dataset
moments), so they need one channel count and, unless an ``output_shape`` crops them, one
size. :func:`shape_error` names the two samples that differ (with their files, for a
``DataGenerator``), what differs and what to change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from datumio.datagen.loaders import img_loader
from datumio.errors import OptionError, printable

_CHANNELS = {1: "grey", 2: "grey and alpha", 3: "RGB", 4: "RGBA"}
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def _sample_name(source: Any, data_loader: Callable[..., Any] | None, index: int) -> str:
    """``sample 3``, or ``sample 3 (path/of/it.png)`` for a sample loaded from a file."""
    if data_loader is None:
        return f"sample {index}"
    return f"sample {index} ({printable(str(source[index]))})"


def _channels(count: int) -> str:
    kind = _CHANNELS.get(count)
    return f"{count} channel{'s' if count != 1 else ''}" + (f" ({kind})" if kind else "")


def _channel_advice(data_loader: Callable[..., Any] | None, count: int) -> str:
    mode = _MODES.get(count, "RGB")
    if data_loader is img_loader:
        return (
            f"give DataGenerator dl_kwargs={{'mode': {mode!r}}} so that img_loader converts "
            "every image file to that mode (arrays saved as .npy must be saved alike)"
        )
    if data_loader is not None:
        return (
            f"make data_loader return {count} channels for every file (with Pillow: "
            f"Image.open(path).convert({mode!r}))"
        )
    return f"give every sample of X {count} channels"


def _size(shape: Sequence[int]) -> str:
    return f"{shape[0]}x{shape[1]}"


def shape_error(
    source: Any,
    data_loader: Callable[..., Any] | None,
    index: int,
    shape: Sequence[int],
    first: int,
    first_shape: Sequence[int],
    *,
    dataset_axis: object = None,
    moments: bool = False,
) -> OptionError:
    """Sample ``index`` of ``source`` (``shape``, HxWxC) does not fit sample ``first``
    (``first_shape``); ``data_loader`` loads the samples from ``source`` (None: in memory).

    ``moments``: found while computing the dataset moments over ``dataset_axis`` (the raw
    samples, before any augmentation); else in a batch (after the augmentation).
    """

    def name(k: int) -> str:
        return _sample_name(source, data_loader, k)

    if shape[-1] != first_shape[-1]:
        most = max(shape[-1], first_shape[-1])
        return OptionError(
            f"{name(index)} has {_channels(shape[-1])} but {name(first)} has "
            f"{_channels(first_shape[-1])}: every image of a generator needs the same "
            f"number of channels; {_channel_advice(data_loader, most)}"
        )
    if moments:
        return OptionError(
            f"dataset_zmuv with dataset_axis={dataset_axis!r} keeps the image height or width "
            f"in the moments, so it needs images of one size: {name(index)} is "
            f"{_size(shape)} but {name(first)} is {_size(first_shape)}. Give "
            "dataset_axis=(0, 1, 2) (moments per channel) or None (one mean and std), which "
            "take any sizes, and an output_shape in aug_params or rng_aug_params so that the "
            "batches have one size; or resize the images beforehand"
        )
    return OptionError(
        f"{name(index)} came out {_size(shape)} but {name(first)} came out "
        f"{_size(first_shape)}: images of different sizes need an output_shape in aug_params "
        "or rng_aug_params (every sample is then cropped, or padded, about its centre to it); "
        "or resize the images beforehand"
    )
