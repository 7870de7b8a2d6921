"""The Loader's default transform does what ``default_transform``'s docstring and
docs/loader.md say: stored pixels when every record has one size; for mixed sizes, the
shorter side resized to 224 and a 224x224 centre crop, uint8 HWC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from builders import DatasetFactory, Drawing
from PIL import Image

import datumio
from datumio.augment import Transform, apply, sample_rng
from datumio.loader import Loader
from datumio.loader.defaults import DEFAULT_SIZE, default_transform

pytestmark = pytest.mark.timeout(60)

DOCS_LOADER = Path(__file__).resolve().parents[2] / "docs" / "loader.md"


def test_docs_and_docstring_say_the_same(tiny_lmdb: Path) -> None:
    row = next(
        line for line in DOCS_LOADER.read_text().splitlines() if line.startswith("| `transform`")
    )
    for words in ("uint8 HWC", "same stored size", "shorter side 224", "224x224"):
        assert words in row, row
    doc = " ".join((default_transform.__doc__ or "").split())
    for words in ("uint8 HWC", "mixed stored sizes", "shorter side is 224", "224x224"):
        assert words in doc, doc


def test_mixed_sizes_are_resized_and_centre_cropped(tiny_lmdb: Path) -> None:
    with datumio.open(tiny_lmdb) as ds:
        assert len({ds.shape(i)[:2] for i in range(len(ds))}) > 1  # the fixture's sizes differ
        spec = default_transform(ds)
        expected = Transform(size=DEFAULT_SIZE, layout="HWC", dtype="uint8")
        assert spec == expected and spec.resize is None and not spec.keep_scale
        record = 0
        h, w, _ = ds.shape(record)
        pixels = ds.image(record)
    out = np.empty(spec.output_shape(3), np.uint8)
    apply(spec, pixels, sample_rng(0, 0, 0), out)
    # What the words promise, with Pillow: shorter side to 224, then the centre 224x224.
    scale = 224 / min(h, w)
    big = Image.fromarray(pixels).resize(
        (round(w * scale), round(h * scale)), Image.Resampling.BILINEAR
    )
    left, top = (big.width - 224) // 2, (big.height - 224) // 2
    crop = np.asarray(big.crop((left, top, left + 224, top + 224)), dtype=float)
    assert np.abs(out.astype(float) - crop).mean() < 6


def test_the_loader_without_a_transform_yields_224_batches(tiny_lmdb: Path) -> None:
    with Loader(tiny_lmdb, 4, workers=1, sampling="natural") as loader:
        images, labels = next(iter(loader))
        assert loader.transform.size == (224, 224)
    assert images.shape == (4, 224, 224, 3) and images.dtype == np.uint8
    assert labels.shape == (4,)


def test_one_stored_size_gives_the_stored_pixels(dataset_factory: DatasetFactory) -> None:
    path = dataset_factory(Drawing({"a": 2, "b": 2}, size=(12, 20), names="{k}", seed=1))
    with datumio.open(path) as ds:
        spec = default_transform(ds)
        assert spec.size == (12, 20) and spec.layout == "HWC" and spec.dtype == "uint8"
        out = np.empty(spec.output_shape(3), np.uint8)
        apply(spec, ds.image(0), sample_rng(0, 0, 0), out)
        np.testing.assert_array_equal(out, ds.image(0))
