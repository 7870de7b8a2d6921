"""Ingest to a URL: each task uploads its own shard (a Dask worker's too), files are skipped
only when the server's MD5 says they are the same, and an existing dataset needs --overwrite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from remote_support import BUCKET, draw_owls_and_yaks

import datumio
from datumio.errors import IngestError
from datumio.remote.publish import publish

pytestmark = pytest.mark.timeout(180)


_images = draw_owls_and_yaks


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_tasks_upload_their_shards_before_the_manifest(s3_env, tmp_path, executor) -> None:
    if executor == "dask":
        pytest.importorskip("distributed")
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_env.options())
    url = f"s3://{BUCKET}/by-{executor}.lmdb"
    seen: dict[str, list[str]] = {}

    def events(step: str) -> None:
        if step == "finalize":  # every shard task has answered; nothing published yet
            fs.invalidate_cache()
            seen["at finalize"] = sorted(p.rsplit("/", 1)[-1] for p in fs.find(url))

    options = datumio.IngestOptions(workers=2, shard_records=4, executor=executor)
    report = datumio.ingest(str(_images(tmp_path / "src")), url, options, events=events)
    shards = sorted(s.file.rsplit("/", 1)[-1] for s in report.manifest.shards)
    assert len(shards) >= 4
    assert seen["at finalize"] == shards, "the tasks did not upload their shards themselves"
    ds = datumio.open(url, cache_dir=str(tmp_path / "read"), storage_options=s3_env.options())
    staged = datumio.open(str(tmp_path / "cache" / "ingest" / Path(ds.path).name))
    for i in range(len(ds)):
        assert np.array_equal(ds.image(i), staged.image(i)), f"record {i}"


def test_a_same_size_file_with_other_bytes_is_sent_again(s3, tmp_path: Path) -> None:
    import s3fs

    staging = tmp_path / "staged.lmdb"
    datumio.ingest(
        str(_images(tmp_path / "src")), str(staging), datumio.IngestOptions(shard_records=5)
    )
    url = f"s3://{BUCKET}/checked.lmdb"
    publish(str(staging), url, storage_options=s3.options())
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3.options())
    shard = staging / "shards" / "shard-00001.mdb"
    other = bytearray(shard.read_bytes())
    other[-100:] = bytes(100)[: len(other[-100:])]
    other[len(other) // 2] ^= 0xFF
    fs.pipe(f"{BUCKET}/checked.lmdb/shards/shard-00001.mdb", bytes(other))

    again = publish(str(staging), url, storage_options=s3.options())
    assert again == ["shards/shard-00001.mdb", "manifest.json"]  # the others matched by MD5
    assert fs.cat_file(f"{BUCKET}/checked.lmdb/shards/shard-00001.mdb") == shard.read_bytes()


def test_an_existing_dataset_at_the_url_needs_overwrite(s3_env, tmp_path: Path) -> None:
    url = f"s3://{BUCKET}/twice.lmdb"
    src = _images(tmp_path / "src")
    datumio.ingest(str(src), url, datumio.IngestOptions(shard_records=5))
    with pytest.raises(IngestError, match=r"already holds a dataset.*--overwrite"):
        datumio.ingest(str(src), url, datumio.IngestOptions(shard_records=5))
    newer = _images(tmp_path / "src2", seed=9)
    datumio.ingest(str(newer), url, datumio.IngestOptions(shard_records=5, overwrite=True))
    ds = datumio.open(url, cache_dir=str(tmp_path / "read"), storage_options=s3_env.options())
    datumio.ingest(str(newer), str(tmp_path / "local.lmdb"), datumio.IngestOptions(shard_records=5))
    assert len(ds) == 18
    local = datumio.open(str(tmp_path / "local.lmdb"))
    for i in range(len(ds)):
        assert np.array_equal(ds.image(i), local.image(i)), f"record {i}: the old bytes stayed"
