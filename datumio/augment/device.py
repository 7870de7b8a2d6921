"""``decode="device"``: workers hand over JPEG bytes and the drawn geometry, not pixels.

When the CPU is the wall (a small model on a fast accelerator), the workers only read and
sample records: per sample they draw the same parameters the CPU path would
(:func:`datumio.augment.geometry.plan`, from the same per-sample stream) and write the
record's JPEG bytes plus :data:`PARAMS` into the slot. The consumer decodes the batch on the
device (nvJPEG through ``torchvision.io.decode_jpeg(device="cuda")``), cuts each box,
resizes it (bilinear, antialiased when shrinking), mirrors it and normalises it there:
:func:`datumio.adapters.torch_handoff.decode_batch`.

What moves to the device is what is cheap there: the base view (a random resized crop, or
resize + centre crop) and flips, then the per-channel normalisation. Rotation, shear, zoom,
translation, photometric ops, ``user_fn``, ``keep_scale`` and per-sample/per-batch zmuv stay
on the CPU path (:func:`check` says so).
"""

from __future__ import annotations

import numpy as np

from datumio.augment import geometry, opencv
from datumio.augment.spec import Transform
from datumio.errors import OptionError, RecordError

#: Per-sample float64 parameters written beside the bytes.
PARAMS = ("nbytes", "width", "height", "x0", "y0", "x1", "y1", "flip_x", "flip_y")
#: Bytes reserved per sample: this many times the dataset's mean record, and at least
#: this many times the raw uint8 output (a record larger than that is replaced like an
#: unreadable one, logged and counted).
MEAN_HEADROOM = 4
OUTPUT_HEADROOM = 2


def check(spec: Transform, encoding: str) -> None:
    """Refuse what the device path cannot do, saying what to change.

    Raises:
        OptionError: the records are not JPEG, or the Transform needs the CPU path.
    """
    if encoding != "jpeg":
        raise OptionError(
            f'decode="device" needs JPEG records written by the ingest (encoding "jpeg"); '
            f'this dataset has "{encoding}": ingest with --encode jpeg or --short-side N, '
            'or decode in the workers (decode="worker")'
        )
    cpu_only = [
        name
        for name, on in (
            ("rotation/shear/zoom/translation/do_flip_*", spec.has_affine),
            ("brightness/contrast/saturation/grayscale", spec.has_photometric),
            ("user_fn", spec.user_fn is not None),
            ("pipeline", spec.pipeline is not None),
            ("keep_scale", spec.keep_scale),
            ("sample_zmuv/batch_zmuv", spec.sample_zmuv or spec.batch_zmuv),
            (f"resample={spec.resample!r}", spec.resample != "bilinear"),
        )
        if on
    ]
    if cpu_only:
        raise OptionError(
            f'decode="device" does the base view (crop_scale or resize), flip and mean/std on '
            f"the device; this Transform also uses {', '.join(cpu_only)}: drop them or use "
            'decode="worker"'
        )


def sample_bytes(spec: Transform, mean_record_bytes: float, channels: int) -> int:
    """Bytes reserved for one sample's record in a slot."""
    h, w = spec.size
    need = max(MEAN_HEADROOM * mean_record_bytes, OUTPUT_HEADROOM * h * w * channels)
    return int(-(-int(need) // 64) * 64)


def stage(
    spec: Transform,
    payload: bytes | memoryview,
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    out: np.ndarray,
    params: np.ndarray,
) -> None:
    """Write ``payload`` into ``out`` (a uint8 row) and its drawn geometry into ``params``.

    Raises:
        RecordError: the record does not fit the row, or is not a complete JPEG.
    """
    n = len(payload)
    if n > out.shape[0]:
        raise RecordError(
            f'record of {n} bytes does not fit the {out.shape[0]} bytes decode="device" '
            "reserves per sample (4x the mean record); it is replaced like an unreadable one"
        )
    if bytes(payload[:2]) != b"\xff\xd8" or not opencv.complete_jpeg(payload):
        raise RecordError("not a complete JPEG (no SOI/EOI marker)")
    h, w = int(shape[0]), int(shape[1])
    m = geometry.plan(spec, w, h, rng).m
    out_h, out_w = spec.size
    x0, x1 = m[0, 2], m[0, 0] * out_w + m[0, 2]
    y0, y1 = m[1, 2], m[1, 1] * out_h + m[1, 2]
    out[:n] = np.frombuffer(payload, dtype=np.uint8)
    params[:] = (n, w, h, min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1), x1 < x0, y1 < y0)
