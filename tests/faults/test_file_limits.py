"""Datasets of many shards against the process's open-file limit (a real ``ulimit -n``).

Each shard a process opens holds file descriptors. A dataset of more shards than the limit
allows must still be read whole, by ``ds[i]``, by a Loader's workers, by ``datumio inspect``
and ``datumio verify``; a process that runs out anyway gets an error naming the limit and
the setting, never "the shard is damaged".
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from builders import Drawing, make_dataset

import datumio

pytestmark = pytest.mark.faults

#: The limit the child processes run under, and the shards that overflow it.
LIMIT = 64
SHARDS = 150


@pytest.fixture(scope="module", params=["lmdb", "h5"])
def many_shards(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """300 noise PNGs of 3 classes, 2 records a shard: :data:`SHARDS` shards."""
    drawing = Drawing({f"c{c}": SHARDS * 2 // 3 for c in range(3)}, size=(12, 12), seed=5)
    root = tmp_path_factory.mktemp(f"many-{request.param}")
    out = make_dataset(root, drawing, suffix=f".{request.param}", workers=2, shard_records=2)
    with datumio.open(out) as ds:
        assert ds.num_shards == SHARDS
    return str(out)


def _limited(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``argv`` run under ``ulimit -n LIMIT`` (soft and hard), in a shell that sets it."""
    command = f'ulimit -n {LIMIT} && exec "$@"'
    return subprocess.run(
        ["sh", "-c", command, "sh", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def _python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code), *args]


READ_ALL = """
    import os, sys
    import datumio

    def fds():
        return len(os.listdir("/proc/self/fd"))

    def main():
        path = sys.argv[1]
        ds = datumio.open(path)
        before = fds()
        labels = [ds[i][1] for i in range(len(ds))]
        assert labels == [int(v) for v in ds.labels], "labels differ"
        ds.advise(range(len(ds)))
        crcs = [ds.shard_crc32(s) for s in range(ds.num_shards)]
        print("read", len(labels), "records of", len(crcs), "shards; fds grew by", fds() - before)
        bounded = datumio.open(path, max_open_shards=3)
        start = fds()
        for i in range(len(bounded)):
            bounded[i]
        print("bounded grew by", fds() - start)
        spec = datumio.Transform(size=(8, 8))
        with datumio.Loader(path, 16, transform=spec, workers=2, sampling="natural") as loader:
            print("loader batches", sum(1 for _ in loader), "of", len(loader))

    if __name__ == "__main__":
        main()
"""


def test_every_record_of_more_shards_than_the_limit_is_read(many_shards: str) -> None:
    result = _limited(_python(READ_ALL, many_shards))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"read {SHARDS * 2} records of {SHARDS} shards")
    assert int(lines[0].rsplit(" ", 1)[1]) < LIMIT // 2  # the default bound: a quarter
    assert int(lines[1].rsplit(" ", 1)[1]) <= 3 * 2  # reader and hint fd per open shard
    assert lines[2] == "loader batches 18 of 18"


def test_inspect_and_verify_read_more_shards_than_the_limit(many_shards: str) -> None:
    inspect = _limited([sys.executable, "-m", "datumio", "inspect", many_shards])
    assert inspect.returncode == 0, inspect.stderr
    assert "integrity: sound" in inspect.stdout
    verify = _limited([sys.executable, "-m", "datumio", "verify", many_shards, "--decode"])
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"in {SHARDS} shard(s)" in verify.stdout


EXHAUST = """
    import os, sys
    import datumio
    from datumio.errors import FileLimitError

    ds = datumio.open(sys.argv[1])
    ds[0]  # the decoders are loaded
    ds.close()  # no shard of its own left to close to make room
    held = []
    try:
        while True:
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    try:
        for i in range(len(ds)):
            ds[i]
    except FileLimitError as exc:
        print("FileLimitError:", exc)
    else:
        print("no error")
"""


def test_running_out_of_files_names_the_limit_and_the_setting(many_shards: str) -> None:
    result = _limited(_python(EXHAUST, many_shards))
    assert result.returncode == 0, result.stderr
    out = result.stdout.strip()
    assert out.startswith("FileLimitError:"), out
    assert f"RLIMIT_NOFILE {LIMIT}" in out and "max_open_shards" in out and "ulimit -n" in out
    assert "damaged" not in out and "verify" not in out


def _worker_fds(path: str, max_open_shards: int) -> int:
    spec = datumio.Transform(size=(8, 8))
    with datumio.Loader(
        path, 16, transform=spec, workers=1, sampling="natural", max_open_shards=max_open_shards
    ) as loader:
        for _ in loader:
            pass
        (pid,) = loader.worker_pids
        return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts fds through /proc")
def test_the_loaders_workers_keep_to_max_open_shards(many_shards: str) -> None:
    few = _worker_fds(many_shards, 2)
    many = _worker_fds(many_shards, SHARDS)
    assert many - few >= (SHARDS - 2)  # a reader each at least, for every shard past 2
