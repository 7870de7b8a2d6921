"""URLs with a query string, and network failures that say what failed.

Real servers on 127.0.0.1, started and stopped here: an HTTP server over ingested datasets
that answers only requests carrying ``?token=<SECRET>`` (403 otherwise), a closed port, a
plain-HTTP port asked for TLS, servers that hang up or never answer, and a name under
``.invalid`` (RFC 2606: it never resolves).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fsspec")  # the datumio[remote] extra
pytest.importorskip("aiohttp")

from remote_support import (
    NOT_A_DATASET,
    SECRET,
    BadServer,
    LoopbackHTTP,
    assert_same_epoch,
    build_data,
    cache_files,
    cache_root,
    closed_port,
    epoch,
    files_with,
    no_secret_in,
)

import datumio
from datumio.errors import OptionError
from datumio.remote import RemoteError

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]

QUERY = f"token={SECRET}"
#: What a URL that answers without a datumio dataset says, and nothing else does.
NO_DATASET = "not a datumio dataset"
#: A folder whose manifest.json is JSON, but not datumio's.
FOREIGN = "foreign"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``out.lmdb``, ``out.h5``, a folder without a manifest, one with a foreign one, and
    two datasets whose URLs differ only in their path (``a/ds.lmdb``, ``b/ds.lmdb``)."""
    root = build_data(tmp_path_factory.mktemp("remote-urls"))
    (root / FOREIGN).mkdir()
    (root / FOREIGN / "manifest.json").write_text(json.dumps({"format": "other", "v": 1}))
    for folder, target in (("a", "out.lmdb"), ("b", "out.h5")):
        (root / folder).mkdir()
        (root / folder / "ds.lmdb").symlink_to(root / target)
    return root


@pytest.fixture
def tokened(data_root: Path) -> Iterator[LoopbackHTTP]:
    """The datasets over HTTP, for requests that carry ``?token=<SECRET>`` only."""
    server = LoopbackHTTP(data_root, token=SECRET)
    try:
        yield server
    finally:
        server.close()


def _printed(exc: BaseException) -> str:
    """Everything a traceback of ``exc`` shows, causes included."""
    return "".join(traceback.format_exception(exc))


def _no_secret_anywhere(tmp_path: Path, *texts: str) -> None:
    for text in texts:
        assert no_secret_in(text, SECRET), text
    assert files_with(tmp_path, SECRET) == []
    assert not [p for p in cache_files(tmp_path) if SECRET in str(p)]


# -- a query string -----------------------------------------------------------------------


def test_a_query_string_goes_with_every_request(tokened, data_root, tmp_path) -> None:
    want = datumio.open(str(data_root / "out.lmdb"))
    url = f"{tokened.url('out.lmdb')}?{QUERY}"
    ds = datumio.open(url, cache_dir=str(tmp_path))
    assert (len(ds), ds.class_names) == (len(want), want.class_names)
    assert tokened.gets("/out.lmdb/manifest.json") == 1  # joined onto the path, not the query
    for i in (0, int(want.shard_offsets[2]) + 1, len(want) - 1):
        assert np.array_equal(ds.image(i), want.image(i)), f"record {i}"
        assert ds.read(i) == want.read(i)
    assert tokened.denied == 0, "a request went without the token"
    # a fragment is never sent to a server: dropped, same dataset, same cache
    again = datumio.open(f"{url}#part-2", cache_dir=str(tmp_path))
    assert again.path == ds.path and len(again) == len(want)
    source = json.loads((Path(ds.path) / "source.json").read_text())
    assert source["url"] == f"{tokened.url('out.lmdb')}?token=***"
    _no_secret_anywhere(tmp_path, repr(ds), repr(ds.store), str(ds.path))
    for d in (ds, again, want):
        d.close()


def test_a_loader_over_a_query_url_gives_the_local_batches(tokened, data_root, tmp_path) -> None:
    local = datumio.open(str(data_root / "out.lmdb"))
    ds = datumio.open(f"{tokened.url('out.lmdb')}?{QUERY}", cache_dir=str(tmp_path))
    assert_same_epoch(epoch(ds), epoch(local))
    assert tokened.denied == 0, "a worker's download went without the token"
    assert sum(tokened.shard_gets("out.lmdb").values()) == ds.num_shards
    ds.close()
    local.close()


def test_query_urls_differing_only_in_path_have_their_own_caches(
    tokened, data_root, tmp_path
) -> None:
    a_url = f"{tokened.url('a/ds.lmdb')}?{QUERY}"
    b_url = f"{tokened.url('b/ds.lmdb')}?{QUERY}"
    a = datumio.open(a_url, cache_dir=str(tmp_path))
    b = datumio.open(b_url, cache_dir=str(tmp_path))
    assert a.path != b.path
    assert (a.backend, b.backend) == ("lmdb", "hdf5")
    for got, name in ((a, "out.lmdb"), (b, "out.h5")):
        want = datumio.open(str(data_root / name))
        last = len(want) - 1
        assert np.array_equal(got.image(last), want.image(last)), name
        want.close()
    # the token names no dataset: another token (or none) finds the same cache
    other = f"{tokened.url('a/ds.lmdb')}?token=another-token-value"
    assert cache_root(tmp_path, other) == cache_root(tmp_path, a_url) == Path(a.path)
    assert tokened.denied == 0
    _no_secret_anywhere(tmp_path, repr(a), repr(b))
    a.close()
    b.close()


def test_a_wrong_token_is_access_denied_and_never_shown(tokened, tmp_path) -> None:
    wrong = "wrong-token-Vb8-never-print-me"
    with pytest.raises(RemoteError) as info:
        datumio.open(f"{tokened.url('out.lmdb')}?token={wrong}", cache_dir=str(tmp_path))
    message = str(info.value)
    assert f"access denied by 127.0.0.1:{tokened.port} (HTTP 403)" in message
    assert NO_DATASET not in message
    assert f"{tokened.url('out.lmdb')}/manifest.json?token=***" in message
    assert info.value.kind == "access denied"
    for text in (message, repr(info.value), _printed(info.value)):
        assert no_secret_in(text, wrong), text


@pytest.mark.parametrize(
    "url",
    [
        "s3://bucket/ds.lmdb?x=1",
        "s3://bucket/ds.lmdb#part",
        "gs://bucket/ds.lmdb?generation=1",
        "file:///data/ds.lmdb?x=1",
    ],
)
def test_a_query_on_a_scheme_without_one_is_refused_up_front(url, tmp_path) -> None:
    # Were the URL read, this endpoint would refuse at once (no wait for AWS).
    options = {
        "endpoint_url": f"http://127.0.0.1:{closed_port()}",
        "config_kwargs": {"retries": {"max_attempts": 1}},
    }
    with pytest.raises(OptionError) as info:
        datumio.open(url, cache_dir=str(tmp_path), storage_options=options)
    message = str(info.value)
    assert "take no query string or fragment" in message
    assert url.partition("?")[0].partition("#")[0] in message  # what to give instead
    assert "storage_options" in message
    assert list(tmp_path.iterdir()) == [], "a refused URL made a cache"


def test_an_ingest_to_a_url_with_a_query_is_refused_up_front(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATUMIO_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "src" / "owl"
    src.mkdir(parents=True)
    with pytest.raises(OptionError, match="take no query string or fragment"):
        datumio.ingest(str(src.parent), "s3://bucket/ds.lmdb?versionId=1")
    assert not (tmp_path / "cache").exists(), "a refused URL made a staging directory"


# -- network failures ---------------------------------------------------------------------


@pytest.fixture(
    params=["refused", "tls", "hangup", "hangup-rst", "silent", "dns"],
)
def unreachable(request, data_root) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(url with a token, the host the message names, the failure kind, storage options)."""
    how = request.param
    options: dict[str, Any] = {"timeout": 30}  # bounds a resolver that hangs, say
    if how == "refused":
        port = closed_port()
        yield (
            f"http://127.0.0.1:{port}/out.lmdb?{QUERY}",
            f"127.0.0.1:{port}",
            ("connection refused"),
            options,
        )
    elif how == "tls":  # https:// to a plain-HTTP port
        http = LoopbackHTTP(data_root)
        try:
            yield (
                f"https://127.0.0.1:{http.port}/out.lmdb?{QUERY}",
                f"127.0.0.1:{http.port}",
                ("TLS failure"),
                options,
            )
        finally:
            http.close()
    elif how == "dns":
        yield (
            f"http://datumio-test.invalid/out.lmdb?{QUERY}",
            "datumio-test.invalid",
            ("DNS failure"),
            options,
        )
    else:
        server = BadServer("silent" if how == "silent" else "hangup", reset=how == "hangup-rst")
        if how == "silent":
            options = {"timeout": 0.5}  # per request: the open fails in about a second
        kind = "timed out" if how == "silent" else "connection reset"
        try:
            yield f"{server.url('out.lmdb')}?{QUERY}", f"127.0.0.1:{server.port}", kind, options
        finally:
            server.close()


def test_a_network_failure_at_open_names_it_and_its_host(unreachable, tmp_path) -> None:
    url, host, kind, options = unreachable
    with pytest.raises(RemoteError) as info:
        datumio.open(url, cache_dir=str(tmp_path), storage_options=options)
    message = str(info.value)
    assert kind in message and host in message, message
    assert NO_DATASET not in message
    assert "/out.lmdb/manifest.json?token=***" in message
    assert info.value.kind == kind
    assert info.value.host.startswith(host), info.value.host  # aiohttp adds the port 80
    _no_secret_anywhere(tmp_path, message, repr(info.value), _printed(info.value))


def test_a_server_gone_after_open_fails_the_read_naming_it(tokened, tmp_path) -> None:
    ds = datumio.open(f"{tokened.url('out.lmdb')}?{QUERY}", cache_dir=str(tmp_path))
    tokened.close()  # nothing listens on its port any more
    with pytest.raises(RemoteError) as info:
        ds.read(int(ds.shard_offsets[1]))
    message = str(info.value)
    assert f"connection refused by 127.0.0.1:{tokened.port}" in message
    assert "/out.lmdb/shards/shard-00001.mdb?token=***" in message
    assert info.value.kind == "connection refused"
    _no_secret_anywhere(tmp_path, message, _printed(info.value))
    assert not [p for p in cache_files(tmp_path) if ".part-" in p.name]
    ds.close()


@pytest.mark.parametrize("name", [NOT_A_DATASET, FOREIGN])
def test_a_server_that_answers_without_a_dataset_says_so(tokened, name, tmp_path) -> None:
    """404 on manifest.json, or a manifest that is not datumio's: "not a datumio dataset"."""
    with pytest.raises(RemoteError) as info:
        datumio.open(f"{tokened.url(name)}?{QUERY}", cache_dir=str(tmp_path))
    message = str(info.value)
    assert NO_DATASET in message
    assert f"{tokened.url(name)}/manifest.json?token=***" in message
    assert info.value.kind == NO_DATASET
    assert tokened.denied == 0
    _no_secret_anywhere(tmp_path, message, _printed(info.value))


# -- the command line ---------------------------------------------------------------------


def _datumio(args: list[str], cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "datumio", *args, "--quiet", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "DATUMIO_CACHE": str(cache)},
        timeout=60,
    )


def test_inspect_and_verify_print_what_failed(tokened, tmp_path) -> None:
    url = f"{tokened.url('out.lmdb')}?{QUERY}"
    inspect = _datumio(["inspect", url], tmp_path)
    assert inspect.returncode == 0, inspect.stderr
    assert json.loads(inspect.stdout)["records"] == 60
    assert no_secret_in(inspect.stdout + inspect.stderr, SECRET)

    port = closed_port()
    for command in ("inspect", "verify"):
        run = _datumio([command, f"http://127.0.0.1:{port}/out.lmdb?{QUERY}"], tmp_path)
        assert run.returncode == 1, (run.stdout, run.stderr)
        assert f"connection refused by 127.0.0.1:{port}" in run.stderr
        assert "Traceback" not in run.stderr and NO_DATASET not in run.stderr
        assert no_secret_in(run.stdout + run.stderr, SECRET)

    refused = _datumio(["verify", "s3://bucket/ds.lmdb?x=1"], tmp_path)
    assert refused.returncode in (1, 2), refused.stderr
    assert "take no query string or fragment" in refused.stderr
    assert "Traceback" not in refused.stderr
