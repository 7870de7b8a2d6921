"""Datasets written by datumio read back with plain lmdb/h5py/numpy/Pillow, per docs/format.md.

The reading helpers below use no datumio code: they follow the written format, so a change
to the format that the document does not describe fails here. datumio is only used to write
the datasets and, separately, as the reference reader to compare with.
"""

from __future__ import annotations

import ast
import io
import itertools
import json
import os
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import h5py
import lmdb
import numpy as np
import pytest
from builders import build_dataset
from PIL import Image, ImageOps, features

import datumio
from datumio.shards.format import FORMAT_VERSION

_DOC = Path(__file__).resolve().parents[2] / "docs" / "format.md"
_WHITE = (255, 255, 255)
# class name -> [(file name, kind)], a long tail with several source formats and modes.
_SOURCES: dict[str, list[tuple[str, str]]] = {
    "ant": [(f"a{i}.png", "rgb") for i in range(4)] + [("a4.jpg", "jpeg"), ("a5.png", "gray")],
    "bee": [("b0.png", "rgba"), ("b1.jpg", "jpeg"), ("b2.png", "rgb"), ("b3.png", "palette")],
    "cow": [("c0.png", "rgb")],
}
_ENCODINGS = ["raw", "png", "jpeg", "keep"] + (["webp"] if features.check("webp") else [])


# -- drawing the input -------------------------------------------------------------------


def _draw(seed: int, kind: str) -> Image.Image:
    """Smooth gradients and a gray patch, so lossy codecs stay close to the source."""
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(17, 48)), int(rng.integers(17, 48))
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack(
        [xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) * 127 // (h + w)],
        axis=-1,
    ).astype(np.uint8)
    y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
    # A gray patch: sharp luma edges, but no chroma edge for 4:2:0 JPEG to smear.
    rgb[y0 : y0 + h // 3, x0 : x0 + w // 3] = rng.integers(0, 256, dtype=np.uint8)
    if kind == "gray":
        return Image.fromarray(rgb[:, :, 0], mode="L")
    if kind == "palette":  # a palette PNG whose colour 0 is transparent
        img = Image.fromarray(rgb, mode="RGB").quantize(16)
        img.info["transparency"] = 0
        return img
    if kind == "rgba":
        alpha = (xx * 255 // max(w - 1, 1)).astype(np.uint8)
        return Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA")
    return Image.fromarray(rgb, mode="RGB")


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("src")
    seed = 0
    for cls, files in _SOURCES.items():
        (root / cls).mkdir()
        for name, kind in files:
            img = _draw(seed, kind)
            if kind == "jpeg":
                img.save(root / cls / name, format="JPEG", quality=92)
            else:
                img.save(root / cls / name, format="PNG", **img.info)
            seed += 1
    return root


# -- a reader that knows only docs/format.md ---------------------------------------------


def plain_decode(payload: bytes, encoding: str, shape: tuple[int, int, int]) -> np.ndarray:
    if encoding == "raw":
        return np.frombuffer(payload, dtype=np.uint8).reshape(shape)
    return normalised_pixels(payload, gray=shape[2] == 1)


def normalised_pixels(data: bytes, gray: bool = False) -> np.ndarray:
    """The decode rules of docs/format.md for 8-bit images."""
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        base = Image.new("RGBA", img.size, (*_WHITE, 255))
        img = Image.alpha_composite(base, img.convert("RGBA"))
    arr = np.asarray(img.convert("L" if gray else "RGB"), dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


class PlainDataset:
    """Reads a dataset directory with lmdb/h5py/numpy only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest: dict[str, Any] = json.loads((root / "manifest.json").read_text("utf-8"))
        self.index = {
            name: np.load(root / rel, mmap_mode="r", allow_pickle=False)
            for name, rel in self.manifest["index"].items()
        }

    def locate(self, i: int) -> tuple[int, int]:
        offsets = self.index["shard_offsets"]
        s = int(np.searchsorted(offsets, i, side="right")) - 1
        return s, i - int(offsets[s])

    def shard(self, s: int) -> dict[str, Any]:
        """Everything in shard ``s``: payloads by local id, meta arrays and info."""
        path = self.root / self.manifest["shards"][s]["file"]
        if self.manifest["backend"] == "lmdb":
            return _read_lmdb_shard(path)
        return _read_h5_shard(path)

    def source(self, i: int) -> str:
        so, src = self.index["source_offsets"], self.index["sources"]
        return bytes(src[int(so[i]) : int(so[i + 1])]).decode("utf-8", "surrogateescape")


def _read_lmdb_shard(path: Path) -> dict[str, Any]:
    env = lmdb.open(str(path), subdir=False, readonly=True, lock=False, max_dbs=2)
    try:
        with env.begin() as txn:
            names = sorted(bytes(k) for k, _ in txn.cursor())
            records = env.open_db(b"records", txn=txn, create=False)
            meta = env.open_db(b"meta", txn=txn, create=False)
            keys_payloads = [(bytes(k), bytes(v)) for k, v in txn.cursor(records)]
            out: dict[str, Any] = {
                name.decode(): np.load(io.BytesIO(bytes(v)), allow_pickle=False)
                for name, v in txn.cursor(meta)
                if name != b"info"
            }
            out["info"] = json.loads(bytes(txn.get(b"info", db=meta)))
    finally:
        env.close()
    assert names == [b"meta", b"records"]
    keys = [struct.unpack(">Q", k)[0] for k, _ in keys_payloads]
    assert keys == list(range(len(keys))), "records keys are 8-byte big-endian local ids"
    assert all(len(k) == 8 for k, _ in keys_payloads)
    out["payloads"] = [v for _, v in keys_payloads]
    return out


def _read_h5_shard(path: Path) -> dict[str, Any]:
    with h5py.File(path, "r") as f:
        out: dict[str, Any] = {
            name: np.asarray(f[name][()])
            for name in ("labels", "crc32", "shapes", "class_offsets", "class_ids")
        }
        offsets = np.asarray(f["payload_offsets"][()])
        blob = np.asarray(f["payload"][()])
        out["info"] = json.loads(f.attrs["info"])
        assert f["payload"].dtype == np.uint8 and offsets.dtype == np.dtype("<i8")
    assert offsets[0] == 0 and offsets[-1] == blob.size
    out["payloads"] = [blob[int(a) : int(b)].tobytes() for a, b in itertools.pairwise(offsets)]
    return out


# -- the tests ---------------------------------------------------------------------------


def _ingest(source_dir: Path, tmp_path: Path, backend: str, encoding: str) -> Path:
    suffix = ".lmdb" if backend == "lmdb" else ".h5"
    out = tmp_path / f"out{suffix}"
    return build_dataset(source_dir, out, encode=encoding, shard_records=4, quality=92)


def _check_class_index(offsets: np.ndarray, ids: np.ndarray, labels: np.ndarray) -> None:
    assert offsets.dtype == np.dtype("<i8") and ids.dtype == np.dtype("<i8")
    assert offsets[0] == 0 and offsets[-1] == len(labels) == len(ids)
    assert np.all(np.diff(offsets) >= 0)
    assert sorted(ids.tolist()) == list(range(len(labels)))
    for c in range(len(offsets) - 1):
        members = ids[offsets[c] : offsets[c + 1]]
        assert np.all(np.diff(members) > 0), "ids ascend within a class"
        assert np.all(labels[members] == c)


@pytest.mark.parametrize("encoding", _ENCODINGS)
@pytest.mark.parametrize("backend", ["lmdb", "hdf5"])
def test_plain_reader_matches_datumio_and_sources(
    source_dir: Path, tmp_path: Path, backend: str, encoding: str
) -> None:
    out = _ingest(source_dir, tmp_path, backend, encoding)
    plain = PlainDataset(out)
    m, idx = plain.manifest, plain.index
    n = sum(len(files) for files in _SOURCES.values())

    # manifest and global index
    assert m["format"] == "datumio" and m["format_version"] == FORMAT_VERSION
    assert m["backend"] == backend and m["encoding"] == encoding
    assert m["num_records"] == n and m["num_classes"] == len(_SOURCES)
    assert m["class_names"] == sorted(_SOURCES)
    assert m["class_counts"] == [len(_SOURCES[c]) for c in sorted(_SOURCES)]
    assert m["channels"] == 3
    dtypes = {"labels": "<i4", "class_offsets": "<i8", "class_ids": "<i8", "shapes": "<u4"}
    dtypes |= {"shard_offsets": "<i8", "source_offsets": "<i8", "sources": "|u1"}
    assert {k: v.dtype.str for k, v in idx.items()} == dtypes
    assert idx["shapes"].shape == (n, 3) and len(idx["source_offsets"]) == n + 1
    assert np.array_equal(np.diff(idx["class_offsets"]), m["class_counts"])
    _check_class_index(idx["class_offsets"], idx["class_ids"], np.asarray(idx["labels"]))
    shard_offsets = idx["shard_offsets"].tolist()
    assert shard_offsets[0] == 0 and shard_offsets[-1] == n
    assert len(m["shards"]) == len(shard_offsets) - 1 == 3  # shard_records=4, 11 records
    suffix = ".mdb" if backend == "lmdb" else ".h5"
    assert not list(out.parent.glob(f".{out.name}.tmp-*")), "no temporary left beside OUT"

    ds = datumio.open(out)
    assert len(ds) == n
    for s, entry in enumerate(m["shards"]):
        assert entry["file"] == f"shards/shard-{s:05d}{suffix}"
        assert entry["first_id"] == shard_offsets[s]
        assert entry["num_records"] == shard_offsets[s + 1] - shard_offsets[s]
        assert entry["file_bytes"] == os.path.getsize(out / entry["file"])
        shard = plain.shard(s)
        payloads, nrec = shard["payloads"], entry["num_records"]
        assert len(payloads) == nrec
        assert entry["payload_bytes"] == sum(len(p) for p in payloads)
        info = shard["info"]
        # A shard is written before global ids exist: its first id lives only in the
        # manifest and index/shard_offsets.npy, never inside the shard.
        assert info["shard"] == s and "first_id" not in info
        assert info["num_records"] == nrec and info["encoding"] == encoding
        assert info["format"] == "datumio" and info["format_version"] == FORMAT_VERSION
        assert shard["crc32"].dtype == np.dtype("<u4") and shard["labels"].dtype == np.dtype("<i4")
        assert shard["shapes"].dtype == np.dtype("<u4") and shard["shapes"].shape == (nrec, 3)
        crc_bytes = shard["crc32"].astype("<u4").tobytes()
        assert entry["records_crc32"] == zlib.crc32(crc_bytes)
        _check_class_index(shard["class_offsets"], shard["class_ids"], shard["labels"])
        for local, payload in enumerate(payloads):
            i = shard_offsets[s] + local
            assert plain.locate(i) == (s, local)
            assert zlib.crc32(payload) == int(shard["crc32"][local])
            label = int(idx["labels"][i])
            assert int(shard["labels"][local]) == label
            shape = tuple(int(v) for v in idx["shapes"][i])
            assert tuple(int(v) for v in shard["shapes"][local]) == shape
            source = plain.source(i)
            assert source == ds.source(i)
            cls, name = source.split("/")
            assert m["class_names"][label] == cls
            kind = dict(_SOURCES[cls])[name]

            pixels = plain_decode(payload, encoding, shape)
            assert pixels.shape == shape and pixels.dtype == np.uint8
            ref, ref_label = ds[i]
            assert ref_label == label
            assert np.array_equal(ref, pixels), f"record {i}: datumio and the plain reader differ"

            original = (source_dir / source).read_bytes()
            if encoding == "keep":
                assert payload == original
            expected = normalised_pixels(original)
            if encoding in ("raw", "png", "keep"):
                assert np.array_equal(pixels, expected), f"record {i} ({kind}) is not exact"
            else:
                # Lossy codecs: close, not exact.
                assert pixels.shape == expected.shape
                err = pixels.astype(np.float64) - expected
                psnr = 10 * np.log10(255**2 / max(float(np.mean(err**2)), 1e-9))
                assert psnr > 28, f"record {i} ({kind}): PSNR {psnr:.1f} dB"
    ds.close()


def _doc_snippets() -> dict[str, Any]:
    """The imports and functions of docs/format.md's Python blocks (their example calls on
    ``out.lmdb`` are left out: tests/test_docs.py runs the blocks whole on the demo)."""
    if not _DOC.is_file():
        pytest.skip("docs/format.md is not in this checkout")
    blocks = re.findall(r"```python\n(.*?)```", _DOC.read_text("utf-8"), flags=re.S)
    namespace: dict[str, Any] = {}
    kept = (ast.Import, ast.ImportFrom, ast.FunctionDef)
    for block in blocks:
        if "def " in block:
            tree = ast.parse(block)
            tree.body = [node for node in tree.body if isinstance(node, kept)]
            exec(compile(tree, str(_DOC), "exec"), namespace)
    return namespace


@pytest.mark.parametrize("encoding", ["keep", "raw", "jpeg"])
@pytest.mark.parametrize("backend", ["lmdb", "hdf5"])
def test_format_md_snippets_read_every_record(
    source_dir: Path, tmp_path: Path, backend: str, encoding: str
) -> None:
    out = _ingest(source_dir, tmp_path, backend, encoding)
    snippets = _doc_snippets()
    read = snippets["read_record_lmdb" if backend == "lmdb" else "read_record_h5"]
    n = sum(len(files) for files in _SOURCES.values())
    # py-lmdb refuses to open one environment twice in a process: read with the snippet
    # (which opens and closes per call) before datumio opens the shards.
    plain = [read(str(out), i) for i in range(n)]
    with datumio.open(out) as ds:
        assert len(ds) == n
        for i, (pixels, label) in enumerate(plain):
            ref, ref_label = ds[i]
            assert label == ref_label
            assert np.array_equal(pixels, ref)


def test_newer_format_version_is_refused(source_dir: Path, tmp_path: Path) -> None:
    out = _ingest(source_dir, tmp_path, "lmdb", "png")
    path = out / "manifest.json"
    manifest = json.loads(path.read_text("utf-8"))
    newer = FORMAT_VERSION + 1
    manifest["format_version"] = newer
    path.write_text(json.dumps(manifest), "utf-8")
    with pytest.raises(datumio.FormatVersionError) as info:
        datumio.open(out)
    message = str(info.value)
    assert re.search(rf"\b{newer}\b", message), message
    assert re.search(rf"\b{FORMAT_VERSION}\b", message), message


def test_directory_without_manifest_is_not_a_dataset(source_dir: Path, tmp_path: Path) -> None:
    out = _ingest(source_dir, tmp_path, "hdf5", "raw")
    (out / "manifest.json").unlink()
    with pytest.raises(datumio.FormatError, match=r"manifest\.json"):
        datumio.open(out)
