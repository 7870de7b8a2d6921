"""The last step of a Transform, split off so that it can run on the accelerator.

A worker that writes float32 normalised CHW moves 4x the bytes of uint8 through shared
memory, the host copy and PCIe. When the consumer has a device, the workers write the
augmented **uint8 HWC** pixels instead and the consumer finishes the batch there in one
fused op: ``out = uint8 * scale + offset`` per channel (``scale = 1/std``,
``offset = -mean/std``), then the layout the Transform asked for (``CHW`` as a
``channels_last`` view: no copy). :func:`split` makes the two halves;
:meth:`Finish.numpy` is the reference on the CPU, equal to the worker's own normalisation
to float rounding (1e-5).

Only pointwise normalisation can move: per-sample and per-batch zmuv need the whole image
or batch and stay in the workers (then nothing is split).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from datumio.augment.spec import Transform


@dataclass(frozen=True)
class Finish:
    """uint8 NHWC batch -> float32 ``(x - mean) / std`` in ``layout``.

    Thread/fork/pickle: immutable plain data.

    Attributes:
        scale: per-channel multiplier (``1/std``; 1 without normalisation), float32.
        offset: per-channel addend (``-mean/std``; 0 without normalisation), float32.
        layout: the layout the Transform asked for: ``"CHW"`` or ``"HWC"``.
    """

    scale: tuple[float, ...]
    offset: tuple[float, ...]
    layout: str

    @property
    def channels(self) -> int:
        return len(self.scale)

    def numpy(self, batch: np.ndarray) -> np.ndarray:
        """The finished float32 batch of a uint8 NHWC ``batch`` (a new array)."""
        scale = np.asarray(self.scale, dtype=np.float32)
        offset = np.asarray(self.offset, dtype=np.float32)
        out = batch.astype(np.float32) * scale + offset
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2)) if self.layout == "CHW" else out


def split(spec: Transform, channels: int) -> tuple[Transform, Finish] | None:
    """(the workers' Transform writing uint8 HWC, the :class:`Finish`), or None.

    None when there is nothing to move (the output is uint8 already) or it cannot move
    (per-sample or per-batch zmuv). ``spec`` must be resolved (mean/std filled).
    """
    if spec.dtype != "float32" or spec.sample_zmuv or spec.batch_zmuv:
        return None
    if spec.normalize and spec.mean is not None and spec.std is not None:
        inv = (1.0 / np.asarray(spec.std, dtype=np.float64)).astype(np.float32)
        mean = np.asarray(spec.mean, dtype=np.float32)
        scale = tuple(float(v) for v in inv)
        offset = tuple(float(v) for v in (-(mean * inv)).astype(np.float32))
    else:
        scale, offset = (1.0,) * channels, (0.0,) * channels
    worker = replace(spec, dtype="uint8", layout="HWC", normalize=False)
    return worker, Finish(scale, offset, spec.layout)
