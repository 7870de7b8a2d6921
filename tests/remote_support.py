"""Helpers of the remote tests (tests/remote and the remote fault tests in tests/faults):
the small datasets, a plain HTTP server with request counts, injected faults and an
optional required token, servers that misbehave at the connection, and what the tests
compare (import them, not conftest)."""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import socket
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from builders import Drawing, build_dataset, draw_classes

import datumio
from datumio.remote import public
from datumio.remote.cache import cache_key

#: Would expose a leak anywhere it showed up: messages, logs, cache files.
SECRET = "s3cr3t-datumio-Qx7-never-print-me"
PASSWORD = "hunter2-pa55-Zk9-never-print-me"
BUCKET = "bucket"
CLASSES = ("ant", "bee", "cow")
PER_CLASS = 20
SHARD_RECORDS = 12  # 60 records in 5 shards
DATASETS = ("out.lmdb", "out.h5")
#: A served folder with files in it but no manifest.json.
NOT_A_DATASET = "notdata"

BATCH = 8
EPOCH_SIZE = 48  # 6 batches, balanced draws: records of every shard
TRANSFORM = datumio.Transform(size=(24, 24), flip=0.5)


#: The images of ``out.lmdb`` and ``out.h5``: 60 pictures, each side 20..35 pixels.
DRAWING = Drawing(
    dict.fromkeys(CLASSES, PER_CLASS), size=range(20, 36), picture="gradient", seed=2024
)


def draw_owls_and_yaks(root: Path, seed: int = 3, per_class: int = 9) -> Path:
    """Two class folders of noise PNGs, 24 wide, 20.. high (an ingest's input); ``root``."""
    counts = {"owl": per_class, "yak": per_class}
    return draw_classes(root, counts, size=lambda k: (20 + k, 24), names="{k}", seed=seed)


def build_data(root: Path) -> Path:
    """:data:`DRAWING` ingested as ``out.lmdb`` and ``out.h5`` below ``root``, and a folder
    that is not a dataset."""
    src = DRAWING.draw(root / "src")
    for name in DATASETS:
        build_dataset(src, root / name, shard_records=SHARD_RECORDS)
    (root / NOT_A_DATASET).mkdir()
    (root / NOT_A_DATASET / "readme.txt").write_text("not a datumio dataset\n")
    return root


def cache_root(cache_dir: Path, url: str) -> Path:
    """The directory of ``url``'s cache below ``cache_dir`` (as open_remote names it)."""
    return cache_dir / cache_key(public(url))


def shard_bytes(root: Path) -> dict[str, int]:
    """name -> size of the finished shard files in a cache (``.part-*`` excluded)."""
    folder = root / "shards"
    if not folder.is_dir():
        return {}
    return {p.name: p.stat().st_size for p in folder.iterdir() if ".part-" not in p.name}


def cache_files(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.rglob("*") if p.is_file())


def epoch(dataset: datumio.Dataset | str) -> list[tuple[np.ndarray, ...]]:
    """One epoch of the tests' loader: (images, labels, ids) per batch, copied out."""
    with datumio.Loader(
        dataset,
        BATCH,
        transform=TRANSFORM,
        workers=2,
        seed=11,
        epoch_size=EPOCH_SIZE,
        extras=("ids",),
    ) as loader:
        return [tuple(np.array(a) for a in batch) for batch in loader]


def assert_same_epoch(
    got: list[tuple[np.ndarray, ...]], want: list[tuple[np.ndarray, ...]]
) -> None:
    assert len(got) == len(want) == EPOCH_SIZE // BATCH
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        assert len(g) == len(w) == 3, f"batch {k}: (images, labels, ids) expected"
        for name, a, b in zip(("images", "labels", "ids"), g, w, strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape, f"batch {k} {name}"
            assert a.tobytes() == b.tobytes(), f"batch {k}: {name} differ"


# -- a plain HTTP server on loopback -------------------------------------------------------


@dataclass
class Fault:
    """What the server does instead of answering a GET.

    ``how``: "short" sends the headers (with the whole Content-Length) and half the body,
    then closes; "unsized" does the same without a Content-Length (a close-delimited
    body); "reset" closes without a word; an int answers that HTTP status.
    """

    how: str | int
    times: int


class _Handler(SimpleHTTPRequestHandler):
    server: LoopbackHTTP

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the test output is the report

    def do_HEAD(self) -> None:
        self.server.note("HEAD", self.path)
        if self.server.authorised(self.path):
            super().do_HEAD()
        else:
            self.send_error(403)

    def do_GET(self) -> None:
        path = self.server.note("GET", self.path)
        if not self.server.authorised(self.path):
            self.send_error(403)
            return
        fault = self.server.take_fault(path)
        if fault is None:
            if self.server.delay_s and "/shards/" in path:
                time.sleep(self.server.delay_s)  # widens the window of concurrent downloads
            super().do_GET()
        elif isinstance(fault, int):
            self.send_error(fault)
        else:
            self._break(fault)

    def _break(self, how: str) -> None:
        self.close_connection = True
        if how == "reset":
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        data = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if how == "short":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)


class LoopbackHTTP(ThreadingHTTPServer):
    """Serves ``root`` read-only on 127.0.0.1 in a thread; counts requests per (method,
    path) and breaks the next GETs of a path on request (:meth:`fail`). With ``token``,
    every request must carry ``?token=<token>`` (403 otherwise; :attr:`denied` counts
    those)."""

    daemon_threads = True

    def __init__(self, root: Path, token: str | None = None) -> None:
        super().__init__(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
        self.requests: collections.Counter[tuple[str, str]] = collections.Counter()
        self.faults: dict[str, Fault] = {}
        self.delay_s = 0.0
        self.token = token
        self.denied = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="loopback-http"
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, name: str, auth: str | None = None) -> str:
        userinfo = f"{auth}@" if auth else ""
        return f"http://{userinfo}127.0.0.1:{self.port}/{name}"

    def note(self, method: str, raw_path: str) -> str:
        path = urllib.parse.unquote(urllib.parse.urlsplit(raw_path).path)
        with self._lock:
            self.requests[method, path] += 1
        return path

    def authorised(self, raw_path: str) -> bool:
        """The request carries the token (always, without one); counts the refused."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(raw_path).query)
        if self.token is None or query.get("token") == [self.token]:
            return True
        with self._lock:
            self.denied += 1
        return False

    def gets(self, path: str) -> int:
        with self._lock:
            return self.requests["GET", path]

    def shard_gets(self, dataset: str) -> dict[str, int]:
        """shard file name -> GETs of it, for every shard of ``dataset`` asked for."""
        prefix = f"/{dataset}/shards/"
        with self._lock:
            return {
                path[len(prefix) :]: n
                for (method, path), n in self.requests.items()
                if method == "GET" and path.startswith(prefix)
            }

    def fail(self, path: str, how: str | int, times: int = 1) -> None:
        with self._lock:
            self.faults[path] = Fault(how, times)

    def take_fault(self, path: str) -> str | int | None:
        with self._lock:
            fault = self.faults.get(path)
            if fault is None or fault.times <= 0:
                return None
            fault.times -= 1
            return fault.how

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)


class BadServer:
    """A TCP server on 127.0.0.1 that never speaks HTTP. ``how``: "silent" accepts
    connections (the kernel's backlog does) and never answers; "hangup" accepts each
    connection and closes it at once, with a reset (RST) when ``reset`` is true."""

    def __init__(self, how: str, reset: bool = False) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self._reset = reset
        self._thread: threading.Thread | None = None
        if how == "hangup":
            self._thread = threading.Thread(target=self._hang_up, name="loopback-hangup")
            self._thread.start()

    def url(self, name: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/{name}"

    def _hang_up(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed: the test is over
                return
            if self._reset:  # close with RST instead of FIN
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the thread
        self.sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def no_secret_in(text: str, *secrets: str) -> bool:
    return not any(s in text or urllib.parse.quote(s) in text for s in secrets)


def files_with(root: Path, *secrets: str) -> list[str]:
    """Files below ``root`` that contain one of ``secrets`` (should be none)."""
    found = []
    for path in cache_files(root):
        data = path.read_bytes()
        if any(s.encode() in data for s in secrets):
            found.append(os.fspath(path))
    return found
