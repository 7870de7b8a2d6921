"""A dataset is complete or absent: temporaries, the atomic swap, stale runs.

Killing and signalling whole ingests is the fault suite's job (``tests/faults``); here a
run is watched from inside (its step events) and from beside (a thread polling OUT).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from builders import draw_classes, widening

import datumio
from datumio.errors import IngestError
from datumio.ingest import atomic


def test_stale_temporary_of_a_dead_run_is_removed(tmp_path: Path) -> None:
    out = tmp_path / "x.lmdb"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / f".x.lmdb.tmp-{dead.stdout.strip()}-abcd"
    (stale / "shards").mkdir(parents=True)
    live = Path(atomic.make_tmp(str(out)))  # ours: alive, must stay
    removed = atomic.clean_stale(str(out))
    assert removed == [str(stale)]
    assert not stale.exists() and live.exists()


WATCH = """
import os, sys, time
path, stop = sys.argv[1], sys.argv[2]
missing = looks = 0
print("ready", flush=True)
while not os.path.exists(stop):
    looks += 1
    if not os.path.exists(os.path.join(path, "manifest.json")):
        missing += 1
print(missing, looks)
"""


@pytest.mark.skipif(atomic._renameat2() is None, reason="no renameat2 (Linux, glibc >= 2.28)")
def test_overwrite_never_leaves_out_missing(tmp_path: Path) -> None:
    """Another process polling OUT during 300 replacements never finds it missing."""
    out, stop = tmp_path / "out.lmdb", tmp_path / "stop"
    out.mkdir()
    (out / "manifest.json").write_text('{"format": "datumio", "k": 0}')
    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCH, str(out), str(stop)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert watcher.stdout is not None and watcher.stdout.readline() == "ready\n"
        for k in range(1, 301):
            tmp = atomic.make_tmp(str(out))
            Path(tmp, "manifest.json").write_text(f'{{"format": "datumio", "k": {k}}}')
            atomic.publish(tmp, str(out), overwrite=True)
    finally:
        stop.touch()
        output, _ = watcher.communicate(timeout=30)
    missing, looks = (int(v) for v in output.split())
    assert looks > 300 and missing == 0
    assert json.loads((out / "manifest.json").read_text())["k"] == 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.lmdb", "stop"]


def test_exchange_swaps_a_file_and_a_directory(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.write_text("file")
    if not atomic.exchange(str(a), str(b)):
        pytest.skip("no RENAME_EXCHANGE here")
    assert a.read_text() == "file" and b.is_dir()


def incomplete(out: Path) -> str | None:
    """Why the dataset at ``out`` is not whole (None when it is): a manifest that does not
    parse, a file it names that is missing, an index file cut short."""
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        return f"manifest.json: {exc!r}"
    if manifest.get("format") != "datumio":
        return f"manifest.json names format {manifest.get('format')!r}"
    index = [*manifest["index"].values(), *manifest["stats"]["files"].values()]
    for name in index:
        try:
            np.load(out / name, allow_pickle=False)
        except (OSError, ValueError) as exc:
            return f"{name}: {exc!r}"
    for name in [s["file"] for s in manifest["shards"]] + [manifest["rejects"]["file"]]:
        if not (out / name).is_file():
            return f"{name} is missing"
    return None


class OutWatcher:
    """Looks at OUT from a thread for as long as the run lasts and from the run's own step
    events; notes every moment OUT was there but not whole."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.looks = self.seen = 0
        self.problems: list[str] = []
        self.steps: list[str] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def check(self, when: str) -> bool:
        """True when OUT exists; a problem is noted when it exists but is not whole."""
        if not self.out.exists():
            return False
        why = incomplete(self.out)
        if why is not None:
            self.problems.append(f"{when}: {why}")
        return True

    def _poll(self) -> None:
        while not self._done.is_set():
            self.looks += 1
            self.seen += self.check("polled")

    def event(self, step: str) -> None:
        self.steps.append(step)
        self.check(f"at step {step!r}")

    def __enter__(self) -> OutWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=30)


def _images(root: Path, classes: dict[str, int], seed: int) -> Path:
    return draw_classes(root, classes, size=widening(16, 12, 4), names="{k:02d}", seed=seed)


@pytest.mark.parametrize("case", ["new", "overwrite"])
def test_out_is_never_seen_before_its_manifest_and_index(tmp_path: Path, case: str) -> None:
    """OUT appears whole or not at all: not at any step before ``published``, and
    whenever a watcher finds it, its manifest parses and every file it names is there."""
    src = _images(tmp_path / "src", {"a": 9, "b": 6, "c": 3}, seed=1)
    out = tmp_path / "out.lmdb"
    options = datumio.IngestOptions(workers=1, shard_records=4, overwrite=case == "overwrite")
    if case == "overwrite":
        datumio.ingest(_images(tmp_path / "old", {"x": 3}, seed=2), out, options)
    with OutWatcher(out) as watcher:
        here_at: list[tuple[str, bool]] = []

        def event(step: str) -> None:
            watcher.event(step)
            here_at.append((step, out.exists()))

        def progress(done: int, total: int) -> None:
            event("shard")

        datumio.ingest(src, out, options, events=event, progress=progress)
    assert watcher.problems == []
    assert watcher.steps == ["start", *["shard"] * 5, "finalize", "publish", "published"]
    assert here_at[-1] == ("published", True)
    if case == "new":  # before the rename nothing is at OUT
        assert not any(here for _, here in here_at[:-1])
    else:  # the old dataset, whole, until the swap
        assert all(here for _, here in here_at)
    assert watcher.looks > 0
    assert incomplete(out) is None
    with datumio.open(out) as ds:
        assert len(ds) == 18


@pytest.mark.parametrize("manifest", ['{"format": "other"}', '{"format": "Datumio"}', "{}", "[]"])
def test_overwrite_refuses_a_manifest_not_of_the_datumio_format(
    tmp_path: Path, manifest: str
) -> None:
    """Another tool's ``manifest.json`` does not make a folder replaceable."""
    out = tmp_path / "out.lmdb"
    (out / "shards").mkdir(parents=True)
    (out / "manifest.json").write_text(manifest)
    with pytest.raises(IngestError, match="is not a datumio dataset"):
        atomic.check_replaceable(str(out))
    (out / "manifest.json").write_text('{"format": "datumio"}')
    atomic.check_replaceable(str(out))  # the same folder with datumio's name: replaceable
