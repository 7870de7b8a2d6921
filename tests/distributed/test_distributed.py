"""Beyond one machine: a real 2-worker Dask LocalCluster, kill -9 + --resume, --append, and
two Loader ranks. Real processes and real files throughout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from builders import SEEDED_NAMES, build_dataset, draw_classes, widening
from console import console_argv
from leaks import session_members
from PIL import Image

import datumio
from datumio import IngestOptions
from datumio.shards.verify import verify


def draw(root: Path, classes: dict[str, int], seed: int, size: int = 24) -> Path:
    """Noise PNGs ``CLASS/SEED-NNN.png``, ``size`` high, up to 4 pixels wider."""
    return draw_classes(root, classes, size=widening(size, size, 5), seed=seed, names=SEEDED_NAMES)


def digest(path: Path) -> list[tuple[int, str, int, int]]:
    """(id, source, label, CRC32 of the decoded pixels) of every record."""
    ds = datumio.open(path)
    return [
        (i, ds.source(i), int(ds.labels[i]), zlib.crc32(ds.image(i).tobytes()))
        for i in range(len(ds))
    ]


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dist") / "images"
    draw(root, {"ant": 30, "bee": 12, "cow": 5}, seed=0)
    (root / "bee" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def test_dask_local_cluster_gives_the_local_dataset(src: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    common = {"encode": "png", "shard_records": 8}
    local = datumio.ingest(src, tmp_path / "local.lmdb", IngestOptions(workers=1, **common))
    dask = datumio.ingest(
        src, tmp_path / "dask.lmdb", IngestOptions(workers=2, executor="dask", **common)
    )
    assert dask.num_records == local.num_records == 47
    assert digest(tmp_path / "dask.lmdb") == digest(tmp_path / "local.lmdb")
    strip = ("writer", "ingest", "stats", "dataset_id")  # two datasets: two identities
    ml = {k: v for k, v in local.manifest.to_json().items() if k not in strip}
    md = {k: v for k, v in dask.manifest.to_json().items() if k not in strip}
    assert ml == md  # same shards (files, counts, CRCs), classes, rejects
    assert [r.path for r in dask.rejects] == ["bee/broken.png"]
    assert verify(tmp_path / "dask.lmdb").ok


def _cli(*args: str) -> list[str]:
    code = "import sys; from datumio.tools.ingest_cmd import main; sys.exit(main())"
    return [sys.executable, "-c", code, *args, "--quiet"]


def _sidecars(tmp_path: Path) -> int:
    return sum(len(list(p.glob("sidecars/*.npz"))) for p in tmp_path.glob(".out.lmdb.tmp-*"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kill -9 of a session")
@pytest.mark.parametrize("executor", ["local", "dask"])
def test_kill_9_then_resume_gives_the_same_dataset(tmp_path: Path, executor: str) -> None:
    if executor == "dask":
        pytest.importorskip("distributed")
    images = tmp_path / "images"
    draw(images, {"a": 120, "b": 60, "c": 20}, seed=1, size=64)
    out = tmp_path / "out.lmdb"
    flags = ["--encode", "png", "--shard-size", "10", "--workers", "2", "--executor", executor]
    # The run SIGKILLs itself when its third shard is finished (``datumio/tools/hooks.py``):
    # the kill lands mid-run whatever the machine's speed, never after the end.
    proc = subprocess.Popen(
        _cli(str(images), str(out), *flags),
        env={**os.environ, "DATUMIO_TEST_HOOK": "kill=shard:3"},
        start_new_session=True,
    )
    # Its workers (local processes or the Dask cluster) must go by themselves, and
    # multiprocessing's resource tracker, left alive, removes their semaphores (killing the
    # whole session would leak them in /dev/shm).
    assert proc.wait(timeout=120) == -signal.SIGKILL
    assert _sidecars(tmp_path) >= 3
    deadline = time.monotonic() + 20
    while session_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_members(proc.pid) == [], "workers outlived the killed ingest"
    assert not out.exists()
    resumed = subprocess.run(
        _cli(str(images), str(out), *flags, "--resume", "--json"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["shards_reused"] >= 3 and summary["records"] == 200
    whole = tmp_path / "whole.lmdb"
    datumio.ingest(images, whole, IngestOptions(encode="png", shard_records=10, workers=2))
    assert digest(out) == digest(whole)
    assert verify(out).ok
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "out.lmdb", "whole.lmdb"]


def test_resume_without_a_dead_run_starts_fresh_and_stale_plans_are_not_adopted(
    src: Path, tmp_path: Path
) -> None:
    out = tmp_path / "o.lmdb"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    stale = tmp_path / f".o.lmdb.tmp-{dead}-abcd"
    (stale / "shards").mkdir(parents=True)
    (stale / "plan.json").write_text(json.dumps({"version": 1, "fingerprint": "other"}))
    report = datumio.ingest(src, out, IngestOptions(workers=1, resume=True, shard_records=8))
    assert report.shards_reused == 0 and report.num_records == 47
    assert not stale.exists()


def test_append_keeps_old_ids_and_adds_new_ones(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "d.lmdb"
    datumio.ingest(src, out, IngestOptions(workers=2, encode="png", shard_records=8))
    before = digest(out)
    old = datumio.open(out)  # a reader of the old version, opened before the append
    old_first = old.image(0)
    more = tmp_path / "more"
    draw(more, {"bee": 4, "dog": 6}, seed=2)
    subprocess.run(
        console_argv(["datumio-ingest", "--append", str(more), str(out), "--quiet"]), check=True
    )
    ds = datumio.open(out)
    assert ds.class_names == ["ant", "bee", "cow", "dog"]
    assert len(ds) == len(before) + 10
    after = digest(out)
    assert after[: len(before)] == before
    new = after[len(before) :]
    assert [s for _, s, _, _ in new] == sorted(s for _, s, _, _ in new)
    assert {label for _, _, label, _ in new} == {1, 3}
    assert ds.counts.tolist() == [30, 16, 5, 6]
    assert ds.manifest.generation == 1 and ds.manifest.ingest is not None
    assert (ds.manifest.ingest.options or {})["encode"] == "png"
    assert ds.manifest.class_rejected == (0, 1, 0, 0)
    assert verify(out).ok
    # The old reader still sees the old version, whole.
    assert len(old) == len(before)
    np.testing.assert_array_equal(old.image(0), old_first)
    assert int(old.labels[-1]) == before[-1][2]


def test_two_loader_ranks_read_disjoint_records_covering_the_epoch(
    src: Path, tmp_path: Path
) -> None:
    out = build_dataset(src, tmp_path / "r.lmdb", rejects=1, workers=2, size=(16, 16), encode="raw")
    ds = datumio.open(out)
    seen: list[set[int]] = []
    for rank in range(2):
        sampler = datumio.Sampler(ds, "natural", rank=rank, world_size=2, seed=5)
        transform = datumio.Transform(size=(16, 16), normalize=False, dtype="uint8")
        ids: list[int] = []
        with datumio.Loader(
            out,
            4,
            sampler=sampler,
            transform=transform,
            extras=("ids",),
            workers=1,
            drop_last=False,
        ) as loader:
            for _images, labels, batch_ids in loader:  # one pass: this rank's epoch
                assert np.array_equal(labels, ds.labels[batch_ids])
                ids += [int(i) for i in batch_ids]
        assert len(ids) == len(set(ids)) == len(ds) // 2
        seen.append(set(ids))
    assert not seen[0] & seen[1]
    # natural mode, pad=False: the epoch's uneven last position is dropped (47 records).
    union = seen[0] | seen[1]
    assert union <= set(range(len(ds))) and len(union) == len(ds) - len(ds) % 2


def test_append_keeps_the_old_rejects_per_class(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for name in ("x", "y"):
        (first / name).mkdir(parents=True)
        Image.new("RGB", (8, 8), (10, 20, 30)).save(first / name / "ok.png")
    (first / "y" / "bad.png").write_bytes(b"not an image")
    (second / "y").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(second / "y" / "new.png")
    out = tmp_path / "d.lmdb"
    datumio.ingest(first, out, datumio.IngestOptions(workers=1))
    report = datumio.ingest(second, out, datumio.IngestOptions(workers=1, append=True))
    assert report.manifest.class_counts == (1, 2)
    assert report.manifest.class_rejected == (0, 1)
