"""A stream (an importer's samples) stopped mid-run resumes as a folder ingest does: the
shards it finished are reused, and the dataset is the one an uninterrupted run writes."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import datumio


def _tar(path: Path, first: int, count: int) -> None:
    with tarfile.open(path, "w") as tar:
        for k in range(first, first + count):
            png = io.BytesIO()
            Image.fromarray(np.full((5, 7, 3), k, np.uint8)).save(png, format="PNG")
            for ext, data in (("png", png.getvalue()), ("cls", str(k % 3).encode())):
                info = tarfile.TarInfo(f"s{k:03d}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_a_stopped_stream_resumes_reusing_its_finished_shards(tmp_path: Path) -> None:
    for t in range(3):
        _tar(tmp_path / f"part-{t}.tar", 10 * t, 10)
    pattern = str(tmp_path / "part-{0..2}.tar")
    options = {"shard_records": 4, "workers": 1, "resume": True}
    answered = []

    def stop_after_two() -> bool:
        return len(answered) >= 2

    def progress(done: int, total: int) -> None:
        answered.append(done)

    out = tmp_path / "out.lmdb"
    with pytest.raises(KeyboardInterrupt):
        datumio.ingest(pattern, out, progress=progress, stop=stop_after_two, **options)
    assert not out.exists()
    (build,) = [p for p in tmp_path.iterdir() if p.name.startswith(".out.lmdb.tmp-")]
    assert len(list((build / "sidecars").glob("*.npz"))) >= 2
    report = datumio.ingest(pattern, out, **options)
    assert report.shards_reused >= 2
    whole = datumio.ingest(pattern, tmp_path / "whole.lmdb", shard_records=4, workers=1)
    a, b = datumio.open(out), datumio.open(whole.out)
    assert len(a) == len(b) == 30 and a.class_names == b.class_names
    assert [a.stored(i) for i in range(30)] == [b.stored(i) for i in range(30)]
    assert [a.source(i) for i in range(30)] == [b.source(i) for i in range(30)]
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_resume_refuses_a_stream_that_does_not_name_itself(tmp_path: Path) -> None:
    with pytest.raises(datumio.OptionError, match="resume"):
        datumio.Writer(tmp_path / "out.lmdb", resume=True)
