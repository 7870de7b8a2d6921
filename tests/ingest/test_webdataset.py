"""WebDataset tar shards as input: tars named several ways, samples, fields, rejects, order.

The shards are written here with ``webdataset.TarWriter`` (the package is a test
dependency only: datumio reads the tars with ``tarfile``), a few tiny PNG and JPEG images
each, and ingested with one worker.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import ingest_cli
from image_helpers import read_rejects_jsonl
from PIL import Image

import datumio
from datumio.errors import IngestError, OptionError
from datumio.ingest.options import IngestOptions
from datumio.ingest.webdataset_source import field_name, from_webdataset, webdataset_source
from datumio.ingest.webdataset_tars import expand_braces, tar_paths

wds = pytest.importorskip("webdataset")

#: Samples per tar in :func:`_shards`.
PER_TAR = 4


def _png(value: int, size: tuple[int, int] = (6, 5), mode: str = "RGB") -> bytes:
    """A solid ``size`` (height, width) image of grey level ``value``, as PNG bytes."""
    shape = (*size, 3) if mode == "RGB" else size
    out = io.BytesIO()
    Image.fromarray(np.full(shape, value, np.uint8), mode).save(out, "PNG")
    return out.getvalue()


def _jpg(value: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(out, "JPEG", quality=95)
    return out.getvalue()


def _write(path: Path, samples: list[dict[str, Any]]) -> Path:
    """A tar of ``samples`` (``{"__key__": ..., EXT: bytes or str or dict}``)."""
    with wds.TarWriter(str(path)) as sink:
        for sample in samples:
            sink.write(
                {k: json.dumps(v).encode() if isinstance(v, dict) else v for k, v in sample.items()}
            )
    return path


def _sample(t: int, i: int) -> dict[str, Any]:
    """Sample ``i`` of tar ``t``: a PNG of level ``10 * t + i``, class ``i % 2``, a caption,
    a JSON score and tags, and a segmentation PNG."""
    return {
        "__key__": f"s{t}-{i:02d}",
        "png": _png(10 * t + i),
        "cls": str(i % 2),
        "json": {"score": i / 2, "tags": ["round", "red", "big"][: i % 3]},
        "txt": f"sample {t}-{i}",
        "seg.png": _png(i, (6, 5), "L"),
    }


def _shards(root: Path, tars: int = 3) -> list[Path]:
    """``root/shards/train-00000{0..tars-1}.tar`` of :data:`PER_TAR` samples each."""
    (root / "shards").mkdir()
    return [
        _write(root / "shards" / f"train-{t:06d}.tar", [_sample(t, i) for i in range(PER_TAR)])
        for t in range(tars)
    ]


def _ingest(src: Any, out: Path, **options: Any) -> datumio.Dataset:
    """Import ``src`` into ``out`` with one worker and open it."""
    datumio.ingest(src, out, importer="webdataset", workers=1, **options)
    return datumio.open(out)


def _records(ds: datumio.Dataset) -> list[tuple[str, str, int]]:
    """(source, class name, first pixel) of every record, in id order."""
    return [
        (ds.source(i), ds.class_names[int(ds.labels[i])], int(ds.image(i)[0, 0, 0]))
        for i in range(len(ds))
    ]


def test_classes_labels_pixels_and_fields(tmp_path: Path) -> None:
    tars = _shards(tmp_path)
    pattern = str(tmp_path / "shards" / "train-{000000..000002}.tar")
    ds = _ingest(pattern, tmp_path / "o.lmdb", fields={"seg_png": "mask"})
    assert len(ds) == 3 * PER_TAR
    assert ds.class_names == ["0", "1"]
    assert set(ds.fields) == {"score", "tags", "txt", "seg_png"}
    for t, tar in enumerate(tars):
        for i in range(PER_TAR):
            r = t * PER_TAR + i
            assert ds.source(r) == f"{tar}:s{t}-{i:02d}"
            assert int(ds.labels[r]) == i % 2
            np.testing.assert_array_equal(ds.image(r), np.full((6, 5, 3), 10 * t + i))
            assert ds.field(r, "score") == i / 2
            assert ds.field(r, "txt") == f"sample {t}-{i}"
            np.testing.assert_array_equal(ds.field(r, "seg_png"), np.full((6, 5), i))
            names = ds.fields["tags"].vocabulary or ()
            tags = ds.field(r, "tags")
            assert {names[k] for k in ([] if tags is None else tags)} == set(
                ["round", "red", "big"][: i % 3]
            )


def test_a_list_a_directory_and_braces_name_the_same_tars_in_order(tmp_path: Path) -> None:
    tars = [str(t) for t in _shards(tmp_path)]
    shards = str(tmp_path / "shards")
    assert tar_paths(shards) == tars
    assert tar_paths(os.path.join(shards, "train-{000000..000002}.tar")) == tars
    assert tar_paths(os.path.join(shards, "train-00000{0,2,1}.tar")) == [tars[0], tars[2], tars[1]]
    assert tar_paths([tars[2], tars[0]]) == [tars[2], tars[0]]
    by_dir = _records(_ingest(Path(shards), tmp_path / "dir.lmdb"))
    by_list = _records(_ingest([tars[2], tars[0], tars[1]], tmp_path / "list.lmdb"))
    assert [r[0] for r in by_dir] == [
        f"{t}:s{k}-{i:02d}" for k, t in enumerate(tars) for i in range(PER_TAR)
    ]
    assert by_list == by_dir[2 * PER_TAR :] + by_dir[: 2 * PER_TAR]


def test_the_same_tars_give_the_same_dataset(tmp_path: Path) -> None:
    tars = _shards(tmp_path, tars=2)
    src = str(tmp_path / "shards")
    datumio.ingest(src, tmp_path / "a.lmdb", workers=1)  # a folder of tars: told from SRC
    first = datumio.open(tmp_path / "a.lmdb")
    from_webdataset(src, tmp_path / "b.lmdb", workers=1)
    again = datumio.open(tmp_path / "b.lmdb")
    assert _records(first) == _records(again)
    packed = tmp_path / "packed.tar.gz"
    packed.write_bytes(gzip.compress(tars[1].read_bytes()))
    compressed = _records(_ingest([str(packed)], tmp_path / "c.lmdb"))
    assert [r[1:] for r in compressed] == [r[1:] for r in _records(first)[PER_TAR:]]
    assert [first.record(i)["tags"].tolist() for i in range(len(first))] == [
        again.record(i)["tags"].tolist() for i in range(len(again))
    ]


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("a-{000..002}.tar", ["a-000.tar", "a-001.tar", "a-002.tar"]),
        ("a-{8..11}.tar", ["a-8.tar", "a-9.tar", "a-10.tar", "a-11.tar"]),
        ("a-{2..0}.tar", ["a-2.tar", "a-1.tar", "a-0.tar"]),
        ("{x,y}/a-{0..1}.tar", ["x/a-0.tar", "x/a-1.tar", "y/a-0.tar", "y/a-1.tar"]),
        ("a{}b{c}.tar", ["a{}b{c}.tar"]),
        ("plain.tar", ["plain.tar"]),
    ],
)
def test_brace_patterns(pattern: str, names: list[str]) -> None:
    assert expand_braces(pattern) == names


def test_labels_groups_and_splits_from_json_keys_and_members(tmp_path: Path) -> None:
    samples = [
        {
            "__key__": f"k{i}",
            "jpg": _jpg(40 * i),
            "kind": ["cat", "dog"][i % 2],
            "json": {"patient": f"p{i // 2}", "part": "train" if i < 4 else "val", "w": i},
        }
        for i in range(6)
    ]
    tar = str(_write(tmp_path / "one.tar", samples))
    columns = {"label": "kind", "group": "json:patient", "split": "json:part"}
    ds = _ingest(tar, tmp_path / "o.lmdb", columns=columns)
    assert [ds.class_names[int(x)] for x in ds.labels] == ["cat", "dog"] * 3
    assert ds.groups is not None and ds.manifest.groups is not None
    assert [ds.manifest.groups.names[int(g)] for g in ds.groups] == [
        "p0",
        "p0",
        "p1",
        "p1",
        "p2",
        "p2",
    ]
    assert set(ds.fields) == {"w"}
    assert [ds.field(i, "w") for i in range(6)] == list(range(6))
    val = datumio.open(tmp_path / "o.lmdb", split="val")
    assert [val.source(i) for i in range(len(val))] == [f"{tar}:k4", f"{tar}:k5"]
    picked = _ingest(tar, tmp_path / "train.lmdb", columns=columns, splits=["train"])
    assert [picked.source(i) for i in range(len(picked))] == [f"{tar}:k{i}" for i in range(4)]


def test_bad_samples_and_bad_tars_are_rejected_and_the_rest_is_kept(tmp_path: Path) -> None:
    good = _sample(0, 0)
    no_image = {"__key__": "no-image", "cls": "1", "txt": "words only"}
    bad_labels = [
        {"__key__": "negative", "png": _png(1), "cls": "-1"},
        {"__key__": "float", "png": _png(2), "json": {"label": 2.5}},
        {"__key__": "none", "png": _png(3), "json": {"other": 1}},
        {"__key__": "name", "png": _png(4), "cls": "cat"},  # ids came first
    ]
    first = _write(tmp_path / "a.tar", [good, no_image, *bad_labels, _sample(0, 1)])
    not_a_tar = tmp_path / "b.tar"
    not_a_tar.write_bytes(b"this is no tar file" * 40)
    whole = _write(tmp_path / "c.tar", [_sample(2, i) for i in range(3)])
    with tarfile.open(whole) as tar:
        png = next(m for m in tar.getmembers() if m.name == "s2-01.png")
    cut = tmp_path / "c-cut.tar"
    cut.write_bytes(whole.read_bytes()[: png.offset_data + 10])  # inside a member's data
    missing = tmp_path / "missing.tar"
    src = [str(first), str(not_a_tar), str(cut), str(missing)]
    ds = _ingest(src, tmp_path / "o.lmdb")
    kept = [ds.source(i) for i in range(len(ds))]
    assert kept == [f"{first}:s0-00", f"{first}:s0-01", f"{cut}:s2-00"]
    reasons = {r["path"]: r["reason"] for r in read_rejects_jsonl(tmp_path / "o.lmdb")}
    assert reasons == {
        f"{first}:no-image": "no image",
        f"{first}:negative": "bad label",
        f"{first}:float": "bad label",
        f"{first}:none": "missing label",
        f"{first}:name": "bad label",
        str(not_a_tar): "unreadable tar",
        f"{cut}:s2-01": "truncated tar member",
        str(missing): "unreadable tar",
    }


def test_a_tar_that_stops_at_a_damaged_header_rejects_its_last_sample(tmp_path: Path) -> None:
    tar = _write(tmp_path / "a.tar", [_sample(0, i) for i in (1, 2, 3)])
    with tarfile.open(tar) as whole:
        third = next(m for m in whole.getmembers() if m.name.startswith("s0-03"))
    data = bytearray(tar.read_bytes())
    data[third.offset : third.offset + 512] = b"\x07" * 512  # tarfile stops here, silently
    tar.write_bytes(bytes(data))
    ds = _ingest(str(tar), tmp_path / "o.lmdb")
    assert [ds.source(i) for i in range(len(ds))] == [f"{tar}:s0-01"]
    rejects = read_rejects_jsonl(tmp_path / "o.lmdb")
    assert [(r["path"], r["reason"]) for r in rejects] == [(f"{tar}:s0-02", "truncated tar member")]


def test_members_and_json_keys_become_valid_field_names(tmp_path: Path) -> None:
    assert field_name("seg.png", "member") == "seg_png"
    assert field_name("my-key", "json") == "my_key"
    assert field_name("path", "json") == "json_path"
    assert field_name("3d", "json") == "json_3d"
    sample = {
        "__key__": "k",
        "png": _png(9),
        "cls": "0",
        "depth.png": _png(3),
        "json": {"label": "kept as a field", "path": "/data/x.png", "my-key": 1.5},
    }
    tar = str(_write(tmp_path / "a.tar", [sample]))
    ds = _ingest(tar, tmp_path / "o.lmdb", fields={"depth_png": "bytes"})
    assert ds.record(0) | {"image": None} == {
        "image": None,
        "label": 0,
        "json_label": "kept as a field",
        "json_path": "/data/x.png",
        "my_key": 1.5,
        "depth_png": sample["depth.png"],
    }


def test_two_sources_of_one_field_name_stop_the_run(tmp_path: Path) -> None:
    sample = {"__key__": "k", "png": _png(9), "cls": "0", "a.b": b"x", "json": {"a_b": 1}}
    tar = _write(tmp_path / "a.tar", [sample])
    with pytest.raises(IngestError, match=r"JSON key 'a_b' and member \.a\.b would both be"):
        _ingest(str(tar), tmp_path / "o.lmdb")
    assert not (tmp_path / "o.lmdb").exists()


@pytest.mark.parametrize(
    ("src", "options", "error", "match"),
    [
        ("EMPTY", {}, IngestError, "names no tar file"),
        ([], {}, IngestError, "names no tar file"),
        ("a.tar", {"splits": ["train"]}, OptionError, "split is with columns"),
        ("a.tar", {"columns": {"image": "json:img"}}, OptionError, "give its extension"),
    ],
)
def test_refusals_before_any_tar_is_read(
    tmp_path: Path, src: Any, options: Mapping[str, Any], error: type[Exception], match: str
) -> None:
    (tmp_path / "EMPTY").mkdir()
    given = str(tmp_path / src) if isinstance(src, str) else src
    with pytest.raises(error, match=match):
        webdataset_source(given, IngestOptions(importer="webdataset", **options))


def test_the_command_line_takes_a_brace_pattern_and_columns(tmp_path: Path) -> None:
    samples = [
        {"__key__": f"k{i}", "png": _png(i), "json": {"kind": ["cat", "dog"][i % 2]}}
        for i in range(4)
    ]
    for t in range(2):
        _write(tmp_path / f"part-{t}.tar", samples[2 * t : 2 * t + 2])
    pattern = str(tmp_path / "part-{0..1}.tar")
    flags = ["--from", "webdataset", "--column", "label=json:kind", "--workers", "1"]
    ingest_cli(pattern, tmp_path / "o.lmdb", *flags, check=True)
    ds = datumio.open(tmp_path / "o.lmdb")
    assert [ds.class_names[int(x)] for x in ds.labels] == ["cat", "dog"] * 2
    assert [int(ds.image(i)[0, 0, 0]) for i in range(4)] == [0, 1, 2, 3]


def test_from_webdataset_writes_local_datasets_only(tmp_path: Path) -> None:
    tar = _write(tmp_path / "a.tar", [_sample(0, 1)])
    with pytest.raises(IngestError, match=r"writes a local dataset, not s3://bucket/o\.lmdb"):
        from_webdataset(str(tar), "s3://bucket/o.lmdb")
