"""The transform spec in-process: geometry, draft decoding, normalisation, layout, seeds."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
from PIL import Image

from datumio.augment import Transform, apply, decode_for, sample_rng
from datumio.errors import OptionError

pytestmark = pytest.mark.timeout(30)


def _jpeg(w: int, h: int) -> bytes:
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // w, y * 255 // h, (x + y) % 256], axis=-1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _reference(payload: bytes, resize: int, size: tuple[int, int]) -> np.ndarray:
    """Resize the shorter side, then centre-crop: the torchvision recipe, in two steps."""
    img = Image.open(io.BytesIO(payload)).convert("RGB")
    s = resize / min(img.size)
    w, h = round(img.width * s), round(img.height * s)
    img = img.resize((w, h), Image.Resampling.BILINEAR)
    top, left = (h - size[0]) // 2, (w - size[1]) // 2
    return np.asarray(img.crop((left, top, left + size[1], top + size[0])))


def test_resize_and_centre_crop_match_the_two_step_recipe() -> None:
    payload = _jpeg(120, 90)
    spec = Transform(size=(48, 48), resize=64, layout="HWC", dtype="uint8")
    got = decode_for(spec, payload, sample_rng(0, 0, 0))
    ref = _reference(payload, 64, (48, 48))
    assert got.shape == ref.shape == (48, 48, 3)
    assert np.abs(got.astype(int) - ref.astype(int)).mean() < 2.0


def test_flip_mirrors_exactly_and_follows_the_seed() -> None:
    payload = _jpeg(80, 60)
    plain = decode_for(Transform(size=(40, 40)), payload, sample_rng(0, 0, 0))
    flipped = decode_for(Transform(size=(40, 40), flip=1.0), payload, sample_rng(0, 0, 0))
    np.testing.assert_array_equal(flipped, plain[:, ::-1])
    spec = Transform(size=(40, 40), flip=0.5)
    draws = [decode_for(spec, payload, sample_rng(3, 1, p))[0, 0, 0] for p in range(16)]
    again = [decode_for(spec, payload, sample_rng(3, 1, p))[0, 0, 0] for p in range(16)]
    assert draws == again and len(set(draws)) == 2


def test_jpeg_draft_is_used_when_the_output_is_small_and_stays_close() -> None:
    payload = _jpeg(640, 480)
    spec = Transform(size=(64, 64), resize=64, layout="HWC", dtype="uint8")
    got = decode_for(spec, payload, sample_rng(0, 0, 0))
    ref = _reference(payload, 64, (64, 64))
    assert np.abs(got.astype(int) - ref.astype(int)).mean() < 3.0


def test_normalisation_and_layout() -> None:
    payload = _jpeg(50, 50)
    base = Transform(size=(32, 32), layout="HWC", dtype="uint8")
    u8 = np.empty(base.output_shape(3), np.uint8)
    apply(base, payload, sample_rng(0, 0, 0), u8)
    spec = Transform(size=(32, 32), mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 8.0))
    chw = np.empty(spec.output_shape(3), np.float32)
    apply(spec, payload, sample_rng(0, 0, 0), chw)
    expected = (u8.astype(np.float32) - [10, 20, 30]) / np.float32([2, 4, 8])
    np.testing.assert_allclose(chw, expected.transpose(2, 0, 1), rtol=1e-6, atol=1e-5)


def test_resolved_fills_mean_and_std_from_ingest_stats() -> None:
    spec = Transform(size=(8, 8)).resolved({"mean": [1, 2, 3], "std": [4, 5, 6]}, 3)
    assert spec.mean == (1.0, 2.0, 3.0) and spec.std == (4.0, 5.0, 6.0)
    with pytest.raises(OptionError, match="channels"):
        Transform(size=(8, 8), mean=(1.0,), std=(1.0,)).resolved(None, 3)
    assert pickle.loads(pickle.dumps(spec)) == spec


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": (0, 4)}, "size"),
        ({"size": (8, 8), "resize": 4}, "resize"),
        ({"size": (8, 8), "flip": 2.0}, "flip"),
        ({"size": (8, 8), "layout": "NHWC"}, "layout"),
        ({"size": (8, 8), "dtype": "float16"}, "dtype"),
        ({"size": (8, 8), "std": (1.0, 0.0, 1.0)}, "std"),
    ],
)
def test_bad_specs_name_the_field(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(OptionError, match=match):
        Transform(**kwargs)  # type: ignore[arg-type]


def test_draft_is_requested_only_when_the_output_is_at_most_half(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datumio.augment import pipeline

    seen: list[object] = []
    real = pipeline.normalise

    def spy(img: Image.Image, **kw: object) -> Image.Image:
        seen.append(kw.get("draft_size"))
        return real(img, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "normalise", spy)
    payload = _jpeg(640, 480)
    decode_for(Transform(size=(64, 64), resize=64), payload, sample_rng(0, 0, 0))
    decode_for(Transform(size=(224, 224), resize=256), payload, sample_rng(0, 0, 0))
    assert seen == [(86, 64), None]
