"""Ingest under faults: killed at every step of its plan, signalled, pointed at paths it must
not delete. A dataset is complete or absent, ``--resume`` gives the uninterrupted result, and
``--overwrite`` replaces only what datumio wrote.

Kills are plan-driven, not timed: ``DATUMIO_TEST_HOOK=kill=STEP[:N]`` makes the ingest SIGKILL
itself the N-th time it reaches STEP (``datumio/tools/hooks.py``), ``ready=FILE`` tells a
test that the signal handlers are in place before it sends SIGINT or SIGTERM, and
``hold=FILE`` keeps the run there until the test has sent them.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import builders
import fault_support
import pytest
from leaks import session_members

import datumio
from datumio.errors import IngestError
from datumio.ingest import atomic
from datumio.shards.verify import verify

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]

RUN_TIMEOUT_S = builders.INGEST_TIMEOUT_S
FLAGS = ["--encode", "png", "--shard-size", "6", "--workers", "2", "--quiet"]


draw = fault_support.draw_folders


ingest_cli = functools.partial(builders.ingest_cli, flags=FLAGS)


def digest(path: Path) -> list[tuple[int, str, int, int]]:
    """(id, source, label, CRC32 of the decoded pixels) of every record."""
    with datumio.open(path) as ds:
        return [
            (i, ds.source(i), ds[i][1], zlib.crc32(ds.image(i).tobytes())) for i in range(len(ds))
        ]


def wait_until_gone(pid: int) -> None:
    """The killed ingest's workers must leave by themselves (they die with their parent)."""
    deadline = time.monotonic() + 10
    while session_members(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session_members(pid) == [], "ingest workers outlived the killed ingest"


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return draw(tmp_path_factory.mktemp("faults") / "images", {"a": 14, "b": 9, "c": 4}, 0)


@pytest.fixture(scope="module")
def whole(src: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[int, str, int, int]]:
    """The digest of an uninterrupted run: what every recovery must give."""
    out = tmp_path_factory.mktemp("whole") / "out.lmdb"
    ingest_cli(src, out, check=True)
    return digest(out)


@pytest.mark.parametrize("step", ["start", "shard:1", "shard:3", "finalize", "publish"])
def test_killed_at_a_step_leaves_nothing_and_resume_finishes(
    src: Path, tmp_path: Path, whole: list[tuple[int, str, int, int]], step: str
) -> None:
    out = tmp_path / "out.lmdb"
    run = subprocess.Popen(
        [sys.executable, "-c", "import sys; from datumio.tools.ingest_cmd import main; "
         "sys.exit(main())", str(src), str(out), *FLAGS],
        env={**os.environ, "DATUMIO_TEST_HOOK": f"kill={step}"},
        start_new_session=True,
    )  # fmt: skip
    assert run.wait(timeout=RUN_TIMEOUT_S) == -signal.SIGKILL
    wait_until_gone(run.pid)
    assert not out.exists(), "a killed ingest published a dataset"
    resumed = ingest_cli(src, out, "--resume", "--json", check=True)
    reused = json.loads(resumed.stdout)["shards_reused"]
    if step.startswith("shard:"):  # shards answer in plan order: the first N are finished
        assert reused >= int(step.split(":")[1])
    if step in ("finalize", "publish"):
        assert reused == 5  # every shard was written: nothing is redone
    assert digest(out) == whole
    assert verify(out).ok
    assert [p.name for p in tmp_path.iterdir()] == ["out.lmdb"], "temporaries remain"


@pytest.mark.parametrize("step", ["publish", "published"])
def test_overwrite_killed_around_the_swap_keeps_one_whole_dataset(
    src: Path, tmp_path: Path, whole: list[tuple[int, str, int, int]], step: str
) -> None:
    other = draw(tmp_path / "other", {"x": 5, "y": 3}, seed=7)
    out = tmp_path / "out.lmdb"
    ingest_cli(other, out, check=True)
    before = digest(out)
    killed = ingest_cli(src, out, "--overwrite", hook=f"kill={step}")
    assert killed.returncode == -signal.SIGKILL
    # Before the swap OUT is the old dataset; after it, the new one: never a mixture.
    assert digest(out) == (before if step == "publish" else whole)
    assert verify(out).ok
    # What the killed run left beside OUT (its build or the old copy) goes with the next run.
    ingest_cli(src, out, "--overwrite", check=True)
    assert digest(out) == whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "out.lmdb"]


def test_append_killed_in_its_commit_keeps_the_old_version_and_reruns(
    src: Path, tmp_path: Path
) -> None:
    new = draw(tmp_path / "new", {"a": 3, "d": 4}, seed=3)
    out, fresh = tmp_path / "out.lmdb", tmp_path / "fresh.lmdb"
    ingest_cli(src, out, check=True)
    before = digest(out)
    shutil.copytree(out, fresh)
    killed = ingest_cli(new, out, "--append", hook="kill=commit")
    assert killed.returncode == -signal.SIGKILL
    # The manifest is the commit: until it is replaced, OUT reads as the previous version.
    assert digest(out) == before
    report = verify(out)
    assert report.problems and all("not in the manifest" in p.what for p in report.problems)
    ingest_cli(new, out, "--append", check=True)
    ingest_cli(new, fresh, "--append", check=True)
    assert digest(out) == digest(fresh)
    assert verify(out).ok
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.lmdb", "new", "out.lmdb"]


@pytest.mark.parametrize(
    "signals",
    [[signal.SIGTERM], [signal.SIGINT], [signal.SIGINT, signal.SIGINT]],
    ids=["sigterm", "ctrl-c", "ctrl-c-twice"],
)
def test_sigterm_and_ctrl_c_clean_up(
    src: Path, tmp_path: Path, signals: list[signal.Signals]
) -> None:
    """The first signal stops the run at its next safe point, a second one at once: either
    way exit 130, nothing left. The run holds at its start until the signals are sent, so
    they land in a run that has not finished (no timing, no skip)."""
    work = tmp_path / "work"
    work.mkdir()
    out, ready, go = work / "out.lmdb", tmp_path / "ready", tmp_path / "go"
    code = "import sys; from datumio.tools.ingest_cmd import main; sys.exit(main())"
    run = subprocess.Popen(
        [sys.executable, "-c", code, str(src), str(out), *FLAGS],
        env={**os.environ, "DATUMIO_TEST_HOOK": f"ready={ready};hold={go}"},
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not ready.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ready.exists(), "the ingest never said it was ready"
    for sig in signals:
        os.kill(run.pid, sig)
    go.touch()
    _, err = run.communicate(timeout=RUN_TIMEOUT_S)
    assert run.returncode == 130, err
    assert "interrupted" in err
    wait_until_gone(run.pid)
    assert list(work.iterdir()) == [], "an interrupted ingest left files"


# -- what --overwrite may replace ----------------------------------------------------------


def _user_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize(
    "case",
    ["user-folder", "plain-file", "parent-of-src", "home", "dataset-with-user-file", "link"],
)
def test_overwrite_refuses_what_datumio_did_not_write(src: Path, tmp_path: Path, case: str) -> None:
    env_home = None
    if case == "user-folder":
        out = tmp_path / "photos"
        out.mkdir()
        (out / "holiday.jpg").write_bytes(b"precious")
        (out / "notes").mkdir()
        (out / "notes" / "a.txt").write_text("keep me")
    elif case == "plain-file":
        out = tmp_path / "out.lmdb"
        out.write_text("not a dataset")
    elif case == "parent-of-src":
        images = tmp_path / "data" / "images"
        shutil.copytree(src, images)
        out = tmp_path / "data"
    elif case == "home":
        out = tmp_path / "home"
        out.mkdir()
        (out / ".bashrc").write_text("export X=1")
        env_home = str(out)
    elif case == "dataset-with-user-file":
        out = tmp_path / "out.lmdb"
        ingest_cli(src, out, check=True)
        (out / "README.txt").write_text("my notes on this dataset")
    else:
        target = tmp_path / "real.lmdb"
        ingest_cli(src, target, check=True)
        out = tmp_path / "out.lmdb"
        out.symlink_to(target, target_is_directory=True)
    root = tmp_path if case != "parent-of-src" else tmp_path / "data"
    before = _user_files(root)
    names = sorted(p.name for p in tmp_path.iterdir())
    code = "import sys; from datumio.tools.ingest_cmd import main; sys.exit(main())"
    run_src = src if case != "parent-of-src" else tmp_path / "data" / "images"
    env = {**os.environ, **({"HOME": env_home} if env_home else {})}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(run_src), str(out), *FLAGS, "--overwrite"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env=env,
    )
    assert proc.returncode == 1, proc.stderr
    expected = {
        "user-folder": "is not a datumio dataset",
        "plain-file": "is a file",
        "parent-of-src": "holds the input",
        "home": "home directory",
        "dataset-with-user-file": "README.txt",
        "link": "symbolic link",
    }[case]
    assert expected in proc.stderr and "--overwrite" in proc.stderr, proc.stderr
    assert _user_files(root) == before, "--overwrite touched files it did not write"
    assert sorted(p.name for p in tmp_path.iterdir()) == names, "a temporary was left"


@pytest.mark.parametrize("case", ["empty-folder", "dataset"])
def test_overwrite_replaces_a_dataset_or_an_empty_folder(
    src: Path, tmp_path: Path, whole: list[tuple[int, str, int, int]], case: str
) -> None:
    out = tmp_path / "out.lmdb"
    if case == "empty-folder":
        out.mkdir()
    else:
        ingest_cli(draw(tmp_path / "other", {"z": 4}, seed=5), out, check=True)
    ingest_cli(src, out, "--overwrite", check=True)
    assert digest(out) == whole


def test_labels_file_inside_out_is_protected(tmp_path: Path) -> None:
    images = draw(tmp_path / "images", {"a": 3, "b": 3}, seed=2)
    out = tmp_path / "out.lmdb"
    ingest_cli(images, out, check=True)
    labels = out / "labels.csv"
    labels.write_text("path,label\n" + "".join(f"a/2-{i:03d}.png,a\n" for i in range(3)))
    proc = ingest_cli(images, out, "--overwrite", "--labels", str(labels))
    assert proc.returncode == 1 and "holds the input" in proc.stderr, proc.stderr
    assert labels.exists()


def test_publish_checks_out_again_just_before_the_swap(tmp_path: Path) -> None:
    """OUT may change during a long run: the check is repeated at the swap itself."""
    out = tmp_path / "out.lmdb"
    tmp = atomic.make_tmp(str(out))
    (Path(tmp) / "manifest.json").write_text('{"format": "datumio"}')
    out.mkdir()
    (out / "mine.txt").write_text("someone put this here during the run")
    with pytest.raises(IngestError, match="not a datumio dataset"):
        atomic.publish(tmp, str(out), overwrite=True)
    assert (out / "mine.txt").read_text().startswith("someone")
    atomic.discard(tmp)
