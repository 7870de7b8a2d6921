"""Ingest round trips on real LMDB and HDF5 files: every backend, every encoding."""

from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from builders import Drawing, Slot
from PIL import Image

import datumio
from datumio import IngestOptions
from datumio.errors import FormatError, IngestError, RecordError
from datumio.ingest.options import parse_size
from datumio.shards.manifest import EmptyClass

CLASSES = {"ant": 5, "bee": 3, "cow": 1}


def _smooth(slot: Slot, rng: np.random.Generator) -> np.ndarray:
    """Smooth gradients plus mild noise: lossy codecs stay close, lossless exact."""
    h, w = slot.height, slot.width
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, np.full((h, w), 40.0 * slot.k)], axis=-1)
    return np.clip(base + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8)


#: Class-per-folder PNGs, each side 20..59 pixels.
TREE = Drawing(CLASSES, size=range(20, 60), picture=_smooth, names="{k:02d}")


def draw_tree(root: Path) -> dict[str, np.ndarray]:
    """:data:`TREE` below ``root``; relative path -> pixels."""
    TREE.draw(root)
    return {rel: np.asarray(Image.open(root / rel)) for *_, rel in TREE.files()}


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    src = tmp_path / "src"
    return src, draw_tree(src)


@pytest.mark.parametrize("suffix", [".lmdb", ".h5"])
@pytest.mark.parametrize("encode", ["raw", "png", "keep", "jpeg", "webp"])
def test_round_trip(tree, tmp_path: Path, suffix: str, encode: str) -> None:
    src, pixels = tree
    out = tmp_path / f"out{suffix}"
    report = datumio.ingest(src, out, IngestOptions(encode=encode, workers=1, shard_records=4))
    assert report.num_records == len(pixels)
    ds = datumio.open(out)
    assert ds.backend == ("lmdb" if suffix == ".lmdb" else "hdf5")
    assert ds.encoding == encode
    assert ds.class_names == sorted(CLASSES)
    assert ds.counts.tolist() == [CLASSES[c] for c in sorted(CLASSES)]
    assert ds.num_shards == 3
    for i in range(len(ds)):
        image, label = ds[i]
        rel = ds.source(i)
        expected = pixels[rel]
        assert label == ds.class_names.index(rel.split("/")[0])
        assert image.dtype == np.uint8 and image.shape == expected.shape
        if encode in ("raw", "png", "keep"):
            np.testing.assert_array_equal(image, expected)
        elif encode == "jpeg":
            assert np.abs(image.astype(int) - expected).mean() < 8
        else:
            assert np.abs(image.astype(int) - expected).mean() < 12
    for c in range(ds.num_classes):
        assert all(ds.labels[i] == c for i in ds.class_index(c))


def test_keep_stores_the_original_bytes(tree, tmp_path: Path) -> None:
    src, _ = tree
    out = tmp_path / "keep.lmdb"
    datumio.ingest(src, out, IngestOptions(encode="keep", workers=1))
    ds = datumio.open(out)
    for i in range(len(ds)):
        assert ds.read(i) == (src / ds.source(i)).read_bytes()


def test_resize_options(tree, tmp_path: Path) -> None:
    src, pixels = tree
    cases = {
        "max": (IngestOptions(max_side=30, encode="raw", workers=1), None),
        "short": (IngestOptions(short_side=32, encode="png", workers=1), None),
        "size": (IngestOptions(size=(16, 24), encode="raw", workers=1), (16, 24)),
    }
    for name, (options, fixed) in cases.items():
        ds = datumio.open(datumio.ingest(src, tmp_path / f"{name}.lmdb", options).out)
        for i in range(len(ds)):
            h, w, c = ds[i][0].shape
            sh, sw, _ = pixels[ds.source(i)].shape
            assert c == 3
            if fixed:
                assert (h, w) == fixed
            elif name == "max":
                assert max(h, w) <= 30 and (max(sh, sw) > 30 or (h, w) == (sh, sw))
            else:
                assert min(h, w) == 32
            assert ds.shape(i) == (h, w, c)


def test_size_is_height_width_and_the_manifest_keeps_width_height(tree, tmp_path: Path) -> None:
    """``size`` is (height, width), as ``Transform.size``; the manifest stores the (width,
    height) it always has, and an append reads it back as (height, width)."""
    src, _ = tree
    assert parse_size("24x16") == (16, 24)  # the CLI's WxH
    out = tmp_path / "wide.lmdb"
    report = datumio.ingest(src, out, IngestOptions(size=(16, 24), encode="raw", workers=1))
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["ingest"]["options"]["size"] == [24, 16]
    assert report.manifest.to_json() == on_disk
    with datumio.open(out) as ds:
        assert {ds.shape(i)[:2] for i in range(len(ds))} == {(16, 24)}
    datumio.ingest(src, out, IngestOptions(append=True, workers=1))
    with datumio.open(out) as ds:
        assert len(ds) == 2 * report.num_records
        assert {ds.shape(i)[:2] for i in range(len(ds))} == {(16, 24)}


def test_gray_and_statistics(tree, tmp_path: Path) -> None:
    src, pixels = tree
    out = datumio.ingest(src, tmp_path / "g.h5", IngestOptions(gray=True, workers=1)).out
    ds = datumio.open(out)
    assert ds.manifest.channels == 1
    assert all(ds[i][0].shape[2] == 1 for i in range(len(ds)))
    rgb = datumio.open(datumio.ingest(src, tmp_path / "c.lmdb", IngestOptions(workers=1)).out)
    allpix = np.concatenate([p.reshape(-1, 3) for p in pixels.values()]).astype(np.float64)
    stats = rgb.manifest.stats
    assert stats is not None and stats.mean is not None and stats.std is not None
    np.testing.assert_allclose(stats.mean, allpix.mean(0), atol=1e-3)
    np.testing.assert_allclose(stats.std, allpix.std(0), atol=1e-3)
    sizes = stats.source_size
    assert sizes["width"]["max"] == max(p.shape[1] for p in pixels.values())


def _dataset_digest(path: Path) -> list[tuple[str, int, bytes]]:
    ds = datumio.open(path)
    return [(ds.source(i), int(ds.labels[i]), ds.read(i)) for i in range(len(ds))]


def test_deterministic_whatever_the_workers(tree, tmp_path: Path) -> None:
    src, _ = tree
    digests = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}.lmdb"
        options = IngestOptions(
            workers=workers, encode="jpeg", shuffle=True, seed=3, shard_records=2
        )
        datumio.ingest(src, out, options)
        digests.append(_dataset_digest(out))
    assert digests[0] == digests[1]
    unshuffled = tmp_path / "plain.lmdb"
    datumio.ingest(src, unshuffled, IngestOptions(workers=1, encode="jpeg"))
    assert [d[0] for d in _dataset_digest(unshuffled)] == sorted(d[0] for d in digests[0])
    assert [d[0] for d in digests[0]] != sorted(d[0] for d in digests[0])


def test_existing_output_needs_overwrite(tree, tmp_path: Path) -> None:
    src, _ = tree
    out = tmp_path / "o.lmdb"
    datumio.ingest(src, out, IngestOptions(workers=1))
    with pytest.raises(IngestError, match="--overwrite"):
        datumio.ingest(src, out, IngestOptions(workers=1))
    datumio.ingest(src, out, IngestOptions(workers=1, overwrite=True, encode="raw"))
    assert datumio.open(out).encoding == "raw"
    assert sorted(os.listdir(tmp_path)) == ["o.lmdb", "src"]


def test_output_inside_input_is_refused(tree) -> None:
    src, _ = tree
    with pytest.raises(IngestError, match="inside the input"):
        datumio.ingest(src, src / "out.lmdb", IngestOptions(workers=1))


def test_dataset_pickles_as_its_path_options_and_manifest(tree, tmp_path: Path) -> None:
    src, _ = tree
    ds = datumio.open(datumio.ingest(src, tmp_path / "p.lmdb", IngestOptions(workers=1)).out)
    first = ds[0][0]
    blob = pickle.dumps(ds)
    manifest = (Path(ds.path) / "manifest.json").read_bytes()
    # path, options and the manifest opened (its JSON values), never the index or handles
    assert len(blob) < len(manifest) + 500
    clone = pickle.loads(blob)
    np.testing.assert_array_equal(clone[0][0], first)


def test_newer_format_version_is_refused(tree, tmp_path: Path) -> None:
    src, _ = tree
    out = tmp_path / "v.lmdb"
    datumio.ingest(src, out, IngestOptions(workers=1))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["format_version"] = 99
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(datumio.FormatVersionError, match=r"version 99.*up to 2"):
        datumio.open(out)


def test_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"no manifest\.json"):
        datumio.open(tmp_path)


def test_bit_rot_is_caught_by_crc(tree, tmp_path: Path) -> None:
    src, _ = tree
    out = tmp_path / "rot.h5"
    datumio.ingest(src, out, IngestOptions(workers=1, encode="raw"))
    with datumio.open(out) as ds:  # closed before the file changes under it
        payload = ds.read(0)
    shard = out / "shards" / "shard-00000.h5"
    data = bytearray(shard.read_bytes())
    at = data.find(payload[:64])
    assert at > 0
    data[at + 10] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(RecordError, match=r"record 0 .*shard-00000\.h5.*CRC32"):
        datumio.open(out)[0]


def test_jpeg_draft_path_keeps_the_requested_size(tmp_path: Path) -> None:
    src = tmp_path / "src" / "a"
    src.mkdir(parents=True)
    buf = io.BytesIO()
    Image.fromarray(np.full((800, 600, 3), 128, np.uint8)).save(buf, format="JPEG")
    (src / "big.jpg").write_bytes(buf.getvalue())
    out = datumio.ingest(tmp_path / "src", tmp_path / "d.lmdb", IngestOptions(short_side=100))
    assert datumio.open(out.out).shape(0) == (133, 100, 3)


def test_class_whose_rows_all_fail_listing_says_so(tree, tmp_path: Path) -> None:
    src, _ = tree
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nant/00.png,ant\nghost/1.png,ghost\nghost/2.png,ghost\n")
    report = datumio.ingest(src, tmp_path / "l.lmdb", IngestOptions(labels_file=str(labels)))
    manifest = report.manifest
    assert manifest.class_names == ("ant", "ghost")
    assert manifest.class_rejected == (0, 2)
    why = "all 2 file(s) rejected"
    assert manifest.empty_classes == (EmptyClass(id=1, name="ghost", why=why),)
