"""Workers never run the caller's script: a training script without the ``__main__`` guard,
``python -c``, a heredoc on stdin and ``python -m`` all train an epoch, with a ``user_fn``
defined in that ``__main__`` (sent by value), under forkserver and spawn.

Each run is a real subprocess; it must exit 0 having seen every batch, print the script's
top-level line exactly once (a worker that imported the script would print it again), and
say nothing of bootstrapping errors, replacements or dead workers.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

#: Trains one epoch at the top level: no guard, a user_fn of this __main__, a lambda too.
BODY = textwrap.dedent(
    """
    import sys
    import numpy as np
    import datumio

    print("TOP-LEVEL", flush=True)

    def brighten(image, rng):
        return np.minimum(image.astype(np.int32) + 1, 255).astype(np.uint8)

    spec = datumio.Transform(size=(16, 16), dtype="uint8", user_fn=brighten)
    with datumio.Loader(sys.argv[-2], 4, transform=spec, workers=2, sampling="natural",
                        start_method=sys.argv[-1]) as loader:
        seen = sum(len(labels) for _, labels in loader)
        assert seen == len(loader) * 4, seen
        bright = int(next(iter(loader))[0].min())
    gen = datumio.datagen.BatchGenerator(np.zeros((40, 8, 8, 3), np.uint8),
                                         rng_aug_params={"do_flip_lr": True})
    passes = list(gen.get_batch(batch_size=8, workers=2, start_method=sys.argv[-1]))
    print("TRAINED", seen, bright, len(passes), flush=True)
    """
)


def _run(argv: list[str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=100,
    )


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
@pytest.mark.parametrize("how", ["script", "-c", "stdin", "-m"])
def test_an_unguarded_main_trains_an_epoch(
    small_lmdb: Path, tmp_path: Path, how: str, method: str
) -> None:
    body = "import datumio.datagen\n" + BODY
    if how == "script":
        (tmp_path / "train.py").write_text(body)
        done = _run(["train.py", str(small_lmdb), method], tmp_path)
    elif how == "-c":
        done = _run(["-c", body, str(small_lmdb), method], tmp_path)
    elif how == "stdin":
        done = _run(["-", str(small_lmdb), method], tmp_path, stdin=body)
    else:
        (tmp_path / "trainpkg").mkdir()
        (tmp_path / "trainpkg" / "__init__.py").write_text("")
        (tmp_path / "trainpkg" / "train.py").write_text(body)
        done = _run(["-m", "trainpkg.train", str(small_lmdb), method], tmp_path)
    out, err = done.stdout, done.stderr
    assert done.returncode == 0, err[-3000:]
    assert out.count("TOP-LEVEL") == 1, out  # no worker ran the script's top level
    trained = [line.split() for line in out.splitlines() if line.startswith("TRAINED")]
    assert len(trained) == 1 and int(trained[0][1]) > 0, out
    assert int(trained[0][2]) >= 1  # the user_fn of __main__ ran in the workers
    assert int(trained[0][3]) == 5  # 40 samples in batches of 8
    for bad in ("bootstrapping", "replacement", "died", "Traceback"):
        assert bad not in err, err[-3000:]


def test_a_worker_that_cannot_start_stops_the_loader_at_once(
    small_lmdb: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A user_fn that cannot be loaded in a worker: the first worker that fails before it is
    ready raises LoaderError with the reason, with no respawn of more workers that would
    fail the same way, even when its message and its exit are seen at the same time."""
    import loader_hooks
    from leaks import wait_until

    import datumio
    from datumio import LoaderError, Transform

    spec = Transform(size=(16, 16), dtype="uint8", user_fn=loader_hooks.LoadsNowhere())
    with (
        pytest.raises(LoaderError, match="failed at start-up: RuntimeError: this user_fn cannot"),
        datumio.Loader(small_lmdb, 4, transform=spec, workers=2) as loader,
    ):
        loader.start()
        pids = loader.worker_pids
        # Both have said why and exited (zombies until joined) before the loop looks.
        assert wait_until(lambda: all(_exited(pid) for pid in pids), timeout=60)
        next(iter(loader))
    assert "replacement" not in caplog.text


def _exited(pid: int) -> bool:
    """The child ``pid`` has exited (a zombie its parent has not joined yet)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
