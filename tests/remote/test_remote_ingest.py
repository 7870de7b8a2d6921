"""Ingest to a URL: written locally, published with the manifest last, resumable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from remote_support import BUCKET, draw_owls_and_yaks

import datumio
from datumio.remote.publish import publish

pytestmark = pytest.mark.timeout(120)


_images = draw_owls_and_yaks


def test_ingest_to_s3_then_read_it_back(s3, tmp_path: Path, monkeypatch) -> None:
    """The CLI path (endpoint and keys from the environment, as documented)."""
    src = _images(tmp_path / "src")
    env = {
        "AWS_ENDPOINT_URL": s3.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing-secret",
        "DATUMIO_CACHE": str(tmp_path / "cache"),
    }
    url = f"s3://{BUCKET}/ingested.lmdb"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "datumio",
            "ingest",
            str(src),
            url,
            "--quiet",
            "--shard-size",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=100,
        env={**env, "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    ds = datumio.open(url, cache_dir=str(tmp_path / "read"), storage_options=s3.options())
    local = datumio.open(str(tmp_path / "cache" / "ingest" / Path(ds.path).name))
    assert len(ds) == len(local) == 18 and ds.num_shards == local.num_shards >= 3
    for i in range(len(ds)):
        assert np.array_equal(ds.image(i), local.image(i)) and ds.labels[i] == local.labels[i]


def test_publish_sends_the_manifest_last_and_resumes(s3, tmp_path: Path) -> None:
    import s3fs

    src = _images(tmp_path / "src")
    staging = tmp_path / "staged.lmdb"
    datumio.ingest(str(src), str(staging), datumio.IngestOptions(workers=1, shard_records=5))
    url = f"s3://{BUCKET}/published.lmdb"
    sent = publish(str(staging), url, storage_options=s3.options())
    assert sent[-1] == "manifest.json" and "manifest.json" not in sent[:-1]
    assert any(name.startswith("shards/") for name in sent)
    # An interrupted publish: one shard and the manifest missing at the URL.
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3.options())
    fs.rm(f"{BUCKET}/published.lmdb/manifest.json")
    fs.rm(f"{BUCKET}/published.lmdb/shards/shard-00001.mdb")
    with pytest.raises(datumio.remote.RemoteError, match=r"manifest\.json does not exist"):
        datumio.open(url, cache_dir=str(tmp_path / "c1"), storage_options=s3.options())
    again = publish(str(staging), url, storage_options=s3.options())
    assert again == ["shards/shard-00001.mdb", "manifest.json"]
    ds = datumio.open(url, cache_dir=str(tmp_path / "c2"), storage_options=s3.options())
    assert len(ds) == 18 and ds.image(6).shape[2] == 3
