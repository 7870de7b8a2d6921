"""``Transform(user_fn=...)``: its output is used, its failures are TransformError (user code,
never taken for a bad record)."""

from __future__ import annotations

import numpy as np
import pytest

import datumio
from datumio.augment import Transform, apply, sample_rng
from datumio.errors import DecodeError, RecordError, TransformError

pytestmark = pytest.mark.timeout(20)

IMAGE = np.full((24, 24, 3), 100, np.uint8)


def invert(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 255 - image


def explode(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    raise KeyError("no such band")


def crop_half(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return image[: image.shape[0] // 2]


def _run(user_fn: object) -> np.ndarray:
    spec = Transform(size=(16, 16), dtype="uint8", layout="HWC", user_fn=user_fn)  # type: ignore[arg-type]
    out = np.zeros(spec.output_shape(3), np.uint8)
    apply(spec, IMAGE, sample_rng(0, 0, 0), out)
    return out


def test_user_fn_output_is_written() -> None:
    np.testing.assert_array_equal(_run(invert), np.full((16, 16, 3), 155, np.uint8))


def test_a_raising_user_fn_is_a_transform_error_chained_from_it() -> None:
    with pytest.raises(TransformError) as info:
        _run(explode)
    err = info.value
    assert isinstance(err.__cause__, KeyError)
    assert f"{__name__}.explode" in str(err) and "KeyError: 'no such band'" in str(err)
    assert "drop user_fn" in str(err)
    # Not a record problem: the loader must not replace the record with another.
    assert not isinstance(err, DecodeError | RecordError)
    assert datumio.TransformError is TransformError and "TransformError" in datumio.__all__


def test_a_wrong_shape_from_user_fn_is_a_transform_error() -> None:
    with pytest.raises(TransformError, match=r"crop_half\) returned \(8, 16, 3\).*\(16, 16, 3\)"):
        _run(crop_half)


def as_float64(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return image.astype(np.float64) + 0.25  # inside 0-255: used as the uint8 it casts to


def interrupt(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    raise KeyboardInterrupt


def test_a_wider_dtype_inside_0_255_is_taken_as_uint8() -> None:
    np.testing.assert_array_equal(_run(as_float64), np.full((16, 16, 3), 100, np.uint8))


def test_a_keyboard_interrupt_stays_one_where_this_process_takes_ctrl_c() -> None:
    # Here SIGINT is not ignored (unlike in a loader worker): it may be the user's Ctrl-C.
    with pytest.raises(KeyboardInterrupt):
        _run(interrupt)
