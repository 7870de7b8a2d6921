"""Servers that misbehave: connections dropped mid-download, wrong endpoints, missing keys.
Failures are RemoteErrors naming the URL and the file, never a credential, and leave no
half-written file in the cache."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from remote_support import (
    PASSWORD,
    SECRET,
    cache_files,
    closed_port,
    files_with,
    no_secret_in,
)

import datumio
from datumio.remote import RemoteError

pytestmark = pytest.mark.timeout(120)

SHARD = "/out.lmdb/shards/shard-00001.mdb"


def _no_download_left(cache_dir: Path) -> None:
    """No shard-00001 file (final or ``.part-*``) in the cache; its lock file may stay."""
    left = [p for p in cache_files(cache_dir) if p.parent.name == "shards" and "00001" in p.name]
    assert left == [], f"a failed download left {left}"


@pytest.mark.parametrize(
    ("how", "times"),
    [
        ("short", 1),  # whole Content-Length, half the body, closed
        ("reset", 2),  # closed before any answer, twice (aiohttp retries once: see below)
        ("unsized", 1),  # no Content-Length, half the body, closed: looks complete to HTTP
    ],
)
def test_dropped_connection_fails_cleanly_then_recovers(http, local, tmp_path, how, times):
    """Observed: nothing retries a download cut off mid-body (fsspec's HTTP filesystem
    does not, and datumio does not download again): the read fails with a RemoteError,
    the next read downloads the shard whole."""
    want = local["out.lmdb"]
    url = http.url("out.lmdb", auth=f"reader:{PASSWORD}")
    http.fail(SHARD, how, times=times)
    ds = datumio.open(url, cache_dir=str(tmp_path))
    i = int(want.shard_offsets[1])
    try:
        ds.image(i)
    except Exception as exc:
        assert isinstance(exc, RemoteError), f"{type(exc).__name__}: {exc}"
        message = str(exc)
        assert http.url("out.lmdb") + "/shards/shard-00001.mdb" in message
        assert no_secret_in(message, PASSWORD)
        _no_download_left(tmp_path)
    else:
        pytest.fail(f"reading through a dropped connection ({how}) succeeded")
    assert http.gets(SHARD) == times
    assert np.array_equal(ds.image(i), want.image(i))  # the next read downloads it whole
    assert http.gets(SHARD) == times + 1
    ds.close()


def test_one_reset_before_any_answer_is_retried(http, local, tmp_path) -> None:
    """aiohttp sends an idempotent request again once when the server hangs up before
    answering: the read succeeds on the second GET."""
    http.fail(SHARD, "reset", times=1)
    ds = datumio.open(http.url("out.lmdb"), cache_dir=str(tmp_path))
    i = int(ds.shard_offsets[1])
    assert np.array_equal(ds.image(i), local["out.lmdb"].image(i))
    assert http.gets(SHARD) == 2
    ds.close()


def test_a_shard_that_keeps_failing_leaves_nothing(http, tmp_path) -> None:
    http.fail(SHARD, "short", times=1000)
    ds = datumio.open(http.url("out.lmdb"), cache_dir=str(tmp_path))
    for _ in range(3):
        with pytest.raises(RemoteError, match=r"shards/shard-00001\.mdb"):
            ds.read(int(ds.shard_offsets[1]))
    _no_download_left(tmp_path)
    ds.close()


@pytest.mark.parametrize("status", [404, 500, 401])
def test_http_password_never_shows(http, tmp_path, caplog, status) -> None:
    caplog.set_level(logging.INFO)
    url = http.url("out.lmdb", auth=f"reader:{PASSWORD}")
    http.fail(SHARD, status, times=1000)
    ds = datumio.open(url, cache_dir=str(tmp_path))
    with pytest.raises(RemoteError) as info:
        ds.read(int(ds.shard_offsets[1]))
    assert http.url("out.lmdb") + "/shards/shard-00001.mdb" in str(info.value)
    with pytest.raises(RemoteError) as missing:
        datumio.open(http.url("absent.lmdb", auth=f"reader:{PASSWORD}"), cache_dir=str(tmp_path))
    for text in (str(info.value), str(missing.value), repr(ds), caplog.text):
        assert no_secret_in(text, PASSWORD), text
    assert files_with(tmp_path, PASSWORD) == []
    ds.close()


def test_http_password_not_in_store_repr(http, tmp_path) -> None:
    ds = datumio.open(http.url("out.lmdb", auth=f"reader:{PASSWORD}"), cache_dir=str(tmp_path))
    assert no_secret_in(repr(ds.store), PASSWORD)


def test_http_password_not_in_debug_logs(http, tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    ds = datumio.open(http.url("out.lmdb", auth=f"reader:{PASSWORD}"), cache_dir=str(tmp_path))
    ds.read(0)
    ds.close()
    assert no_secret_in(caplog.text, PASSWORD)


def _fail_fast(s3, endpoint: str | None = None) -> dict:
    """Storage options that give up after one try (botocore retries a refused connection
    for seconds otherwise)."""
    options = s3.options(config_kwargs={"retries": {"max_attempts": 1}})
    if endpoint is not None:
        options["endpoint_url"] = endpoint
    return options


def test_s3_secret_never_shows(s3, tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)  # botocore and s3fs say the most at DEBUG
    errors = []
    wrong = _fail_fast(s3, endpoint=f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(RemoteError) as info:
        datumio.open(s3.url("out.lmdb"), cache_dir=str(tmp_path / "a"), storage_options=wrong)
    errors.append(info.value)
    assert "s3://bucket/out.lmdb/manifest.json" in str(info.value)
    with pytest.raises(RemoteError) as info:
        datumio.open(
            "s3://no-such-bucket/out.lmdb", cache_dir=str(tmp_path), storage_options=_fail_fast(s3)
        )
    errors.append(info.value)
    for error in errors:
        assert no_secret_in(str(error), SECRET), str(error)
        assert no_secret_in(repr(error.__cause__), SECRET)
    assert "EndpointConnectionError" in str(errors[0])  # it failed where meant to
    assert "s3://no-such-bucket/out.lmdb/manifest.json does not exist" in str(errors[1])
    assert no_secret_in(caplog.text, SECRET)
    assert files_with(tmp_path, SECRET) == []


def test_s3_missing_shard_key(s3, data_root, tmp_path, caplog) -> None:
    """A dataset whose shard is gone from the bucket: opening works (no shard is read),
    reading a record of that shard is a RemoteError naming it; nothing half-written."""
    import s3fs

    caplog.set_level(logging.DEBUG)
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3.options())
    name = f"holey-{tmp_path.name}.lmdb"
    fs.put(str(data_root / "out.lmdb"), f"bucket/{name}", recursive=True)
    fs.rm(f"bucket/{name}/shards/shard-00001.mdb")
    ds = datumio.open(s3.url(name), cache_dir=str(tmp_path), storage_options=_fail_fast(s3))
    ds.read(0)
    with pytest.raises(RemoteError) as info:
        ds.read(int(ds.shard_offsets[1]))
    assert f"s3://bucket/{name}/shards/shard-00001.mdb" in str(info.value)
    assert no_secret_in(str(info.value), SECRET) and no_secret_in(caplog.text, SECRET)
    _no_download_left(tmp_path)
    ds.close()


def test_reopen_with_corrected_storage_options(s3, tmp_path) -> None:
    wrong = _fail_fast(s3, endpoint=f"http://127.0.0.1:{closed_port()}")
    url = s3.url("out.lmdb")
    with pytest.raises(RemoteError):
        datumio.open(url, cache_dir=str(tmp_path), storage_options=wrong)
    ds = datumio.open(url, cache_dir=str(tmp_path), storage_options=s3.options())
    assert len(ds) == 60
