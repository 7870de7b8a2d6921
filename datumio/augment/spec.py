"""The transform spec: plain, frozen, picklable data sent once to every worker."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from datumio.errors import OptionError

#: A user hook: ``fn(image HxWxC uint8, rng) -> image of the same shape and dtype``.
UserFn = Callable[[np.ndarray, np.random.Generator], np.ndarray]

LAYOUTS = ("HWC", "CHW")
DTYPES = ("uint8", "float32")
RESAMPLES = ("nearest", "bilinear", "bicubic")


@dataclass(frozen=True, kw_only=True)
class Transform:
    """What a worker does to one record before writing it into the batch.

    Order: decode (JPEG draft scaling when the output is at most half the stored size) ->
    one geometric operation (resize the shorter side to ``resize``, centre-crop to ``size``,
    horizontal flip with probability ``flip``; all composed into one matrix, see
    :mod:`datumio.augment.geometry`) -> ``user_fn`` on the uint8 image -> per-channel
    normalisation (float32 only) -> ``layout`` and ``dtype`` written into the output.

    Thread/fork/pickle: immutable; pickles by value (``user_fn`` must be a top-level,
    picklable function).

    Args:
        size: output (height, width).
        resize: shorter side after resizing, before the centre crop. None: the smallest
            resize whose centre crop covers ``size``.
        flip: probability of a horizontal flip (0 to 1).
        normalize: float32 output as ``(pixel - mean) / std``; False keeps 0-255 values.
        mean: per-channel mean on the 0-255 scale; None takes the dataset's ingest stats.
        std: per-channel standard deviation on the 0-255 scale; None: ingest stats.
        layout: ``"CHW"`` or ``"HWC"``.
        dtype: ``"float32"`` or ``"uint8"`` (uint8 is never normalised).
        resample: ``"bilinear"`` (antialiased when shrinking), ``"nearest"`` or ``"bicubic"``.
        user_fn: optional hook applied to the uint8 output-sized image.
    """

    size: tuple[int, int]
    resize: int | None = None
    flip: float = 0.0
    normalize: bool = True
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    layout: str = "CHW"
    dtype: str = "float32"
    resample: str = "bilinear"
    user_fn: UserFn | None = None

    def __post_init__(self) -> None:
        size = tuple(int(v) for v in self.size)
        if len(size) != 2 or min(size) < 1:
            raise OptionError(f"Transform(size={self.size!r}); give (height, width), both >= 1")
        object.__setattr__(self, "size", size)
        if self.resize is not None and int(self.resize) < 1:
            raise OptionError(f"Transform(resize={self.resize}); give a positive shorter side")
        if self.resize is not None and int(self.resize) < min(size):
            raise OptionError(
                f"Transform(resize={self.resize}) is smaller than the crop size {size}: the "
                "centre crop would not fit; raise resize or lower size"
            )
        if not 0.0 <= float(self.flip) <= 1.0:
            raise OptionError(f"Transform(flip={self.flip}); give a probability in [0, 1]")
        if self.layout not in LAYOUTS:
            raise OptionError(f"Transform(layout={self.layout!r}); use one of {LAYOUTS}")
        if self.dtype not in DTYPES:
            raise OptionError(f"Transform(dtype={self.dtype!r}); use one of {DTYPES}")
        if self.resample not in RESAMPLES:
            raise OptionError(f"Transform(resample={self.resample!r}); use one of {RESAMPLES}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None:
                value = tuple(float(v) for v in value)
                object.__setattr__(self, name, value)
        if self.std is not None and min(self.std) <= 0:
            raise OptionError(f"Transform(std={self.std}); every std must be > 0")
        if self.user_fn is not None and not callable(self.user_fn):
            raise OptionError("Transform(user_fn=...) must be a callable (top-level function)")

    def output_shape(self, channels: int) -> tuple[int, int, int]:
        """The shape of one output sample for ``channels`` image channels."""
        h, w = self.size
        return (channels, h, w) if self.layout == "CHW" else (h, w, channels)

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        return np.dtype(self.dtype)

    def resolved(self, stats: Mapping[str, Any] | None, channels: int) -> Transform:
        """A copy with ``mean``/``std`` filled from ingest ``stats`` and checked for ``channels``.

        Raises:
            OptionError: mean/std with the wrong number of channels, or no stats to fill from.
        """
        if self.dtype != "float32" or not self.normalize:
            return self
        mean, std = self.mean, self.std
        if mean is None or std is None:
            if not stats or "mean" not in stats or "std" not in stats:
                raise OptionError(
                    "Transform(normalize=True) needs mean and std, and the dataset manifest has "
                    "no stats; pass Transform(mean=..., std=...) or normalize=False"
                )
            mean = tuple(float(v) for v in stats["mean"]) if mean is None else mean
            std = tuple(max(float(v), 1e-6) for v in stats["std"]) if std is None else std
        for name, value in (("mean", mean), ("std", std)):
            if len(value) != channels:
                raise OptionError(
                    f"Transform({name}={value}) has {len(value)} values but the images have "
                    f"{channels} channels"
                )
        return replace(self, mean=mean, std=std)
