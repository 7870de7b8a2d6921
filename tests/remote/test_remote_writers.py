"""Two writers of one URL. An object store has no lock: runs on one machine take turns
through the local staging directory's lock; a writer elsewhere is caught before the
manifest is sent (the manifest at the URL must still be the one the run saw at its start),
so the other writer's published manifest is never replaced."""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

import pytest
from remote_support import BUCKET, draw_owls_and_yaks

import datumio
from datumio.errors import IngestError
from datumio.remote import RemoteError
from datumio.remote.publish import publish

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]


_images = functools.partial(draw_owls_and_yaks, per_class=6)


def _manifest(s3, url: str) -> bytes:
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3.options())
    return fs.cat_file(f"{url.removeprefix('s3://')}/manifest.json")


@pytest.mark.parametrize("before", ["absent", "a dataset"])
def test_a_manifest_another_writer_published_meanwhile_is_never_replaced(
    s3_env, data_root: Path, tmp_path: Path, before: str
) -> None:
    url = f"s3://{BUCKET}/contested-{before.replace(' ', '-')}.lmdb"
    if before == "a dataset":
        publish(str(data_root / "out.h5"), url, storage_options=s3_env.options())
    theirs = data_root / "out.lmdb"

    def another_writer_publishes(step: str) -> None:
        if step == "finalize":  # this run's shards are sent, its manifest not yet
            publish(str(theirs), url, storage_options=s3_env.options())

    options = datumio.IngestOptions(workers=1, shard_records=4, overwrite=before != "absent")
    with pytest.raises(RemoteError, match="another writer published a dataset at"):
        datumio.ingest(_images(tmp_path / "src", 1), url, options, events=another_writer_publishes)
    assert _manifest(s3_env, url) == (theirs / "manifest.json").read_bytes()


def test_a_second_writer_of_a_url_on_this_machine_stops_at_once(s3_env, tmp_path: Path) -> None:
    url = f"s3://{BUCKET}/turns.lmdb"
    started, go = threading.Event(), threading.Event()
    outcome: list[object] = []

    def hold(step: str) -> None:
        if step == "start":
            started.set()
            go.wait(60)

    def first() -> None:
        options = datumio.IngestOptions(workers=1, shard_records=4)
        try:
            outcome.append(datumio.ingest(_images(tmp_path / "a", 1), url, options, events=hold))
        except Exception as exc:  # reported by the assertion below
            outcome.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert started.wait(60), "the first run never started"
        second = datumio.IngestOptions(workers=1, shard_records=4)
        with pytest.raises(IngestError, match=rf"another datumio run \(pid {os.getpid()}\)"):
            datumio.ingest(_images(tmp_path / "b", 2), url, second)
    finally:
        go.set()
        thread.join(120)
    (report,) = outcome
    assert isinstance(report, datumio.IngestReport), report
    ds = datumio.open(url, cache_dir=str(tmp_path / "read"), storage_options=s3_env.options())
    assert len(ds) == report.num_records == 12
