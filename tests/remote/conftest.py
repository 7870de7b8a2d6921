"""Fixtures of the remote tests: real servers on loopback, started here and stopped after
(moto's S3 server for ``s3://``, a plain HTTP server for ``http://``), a small dataset
ingested once and uploaded to both (the leak check after every test is suite-wide)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# The datumio[remote] extra and moto's server (the test extra); without them: skip the folder.
pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")
pytest.importorskip("s3fs")
pytest.importorskip("moto.server")

from remote_support import (
    BUCKET,
    DATASETS,
    SECRET,
    LoopbackHTTP,
    build_data,
)

import datumio


@dataclass(frozen=True)
class S3:
    """The moto server and how to reach it."""

    endpoint: str

    def options(self, **extra: Any) -> dict[str, Any]:
        """Fresh storage options (botocore rewrites a ``config_kwargs`` dict it is given)."""
        return {"endpoint_url": self.endpoint, "key": "testing", "secret": SECRET, **extra}

    def url(self, name: str) -> str:
        return f"s3://{BUCKET}/{name}"


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``out.lmdb`` and ``out.h5`` (60 records, 5 shards each) and a folder that is no
    dataset; never written to after this."""
    return build_data(tmp_path_factory.mktemp("remote-data"))


@pytest.fixture(scope="session")
def local(data_root: Path) -> dict[str, datumio.Dataset]:
    return {name: datumio.open(str(data_root / name)) for name in DATASETS}


@pytest.fixture(scope="session")
def s3(data_root: Path) -> Iterator[S3]:
    """A moto S3 server on 127.0.0.1 holding ``bucket/out.lmdb`` and ``bucket/out.h5``."""
    import s3fs
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = S3(f"http://{host}:{port}")
        fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3.options())
        fs.mkdir(BUCKET)
        for name in DATASETS:
            fs.put(str(data_root / name), f"{BUCKET}/{name}", recursive=True)
        yield s3
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> S3:
    """Credentials and endpoint in the environment, as the command line and a cluster's
    workers take them; a cache of the test's own."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.options()["secret"])
    monkeypatch.setenv("DATUMIO_CACHE", str(tmp_path / "cache"))
    return s3


@pytest.fixture
def http(data_root: Path) -> Iterator[LoopbackHTTP]:
    """A fresh HTTP server over ``data_root`` (its own request counts and faults)."""
    server = LoopbackHTTP(data_root)
    try:
        yield server
    finally:
        server.close()
