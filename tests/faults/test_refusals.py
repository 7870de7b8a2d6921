"""What cannot work is refused at once, naming the option and the fix, never run silently.

* ``workers`` far beyond the machine's cores (Loader and the original API's generators).
* NaN or inf in a Transform's numbers (``mean``, ``std``, ``allow_stretch``, ...).
* A ``user_fn`` result that a cast to uint8 would wrap (out of 0-255, NaN): the batch
  fails naming the record and the values found.
* ``weights`` naming a class the dataset lacks; class names are taken as keys.
* A batch size that leaves an epoch without a batch (Loader, Sampler, too many ranks).
* ``load_state_dict`` of what is not a state of this kind (None, another library's dict,
  a Sampler's state given to a Loader or the reverse) or whose position lies outside its
  epoch; nothing moves.
* A read-only or missing ``/dev/shm``: said so, with the fix (in a private mount
  namespace; the host's ``/dev/shm`` is never touched).
* A ``user_fn`` (or a ``data_loader``) calling ``sys.exit`` or raising
  ``KeyboardInterrupt``: the batch fails saying so, the workers live on.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import refusal_hooks

import datumio
from datumio import Transform
from datumio.datagen import BatchGenerator, DataGenerator
from datumio.errors import OptionError, WorkerError
from datumio.loader import Loader, LoaderOptions
from datumio.sampling import Sampler

pytestmark = [pytest.mark.faults, pytest.mark.timeout(90)]

SPEC = Transform(size=(16, 16), dtype="uint8", layout="HWC")
BATCH = 4
#: Upper bound on the subprocess of the /dev/shm tests; only a hang comes near it.
PROC_TIMEOUT_S = 60.0


def _loader(path: Path, **kw: Any) -> Loader:
    kw.setdefault("transform", SPEC)
    kw.setdefault("workers", 1)
    return Loader(path, BATCH, **kw)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# -- workers ------------------------------------------------------------------------------


def test_workers_far_beyond_the_cores_are_refused(poison_lmdb: Path) -> None:
    cores = _cores()
    bound = max(8 * cores, 16)
    with pytest.raises(OptionError) as info:
        _loader(poison_lmdb, workers=1000)
    text = str(info.value)
    assert f"workers=1000 is more than {bound} worker processes" in text
    assert f"{cores} cores here" in text and f"give workers={cores} or fewer" in text
    assert LoaderOptions(batch_size=BATCH, workers=bound).workers == bound  # the bound is kept
    x = np.zeros((8, 8, 8, 3), np.uint8)
    with pytest.raises(OptionError, match=f"workers=1000 is more than {bound}"):
        BatchGenerator(x).get_batch(4, workers=1000)  # refused before any process starts


# -- Transform numbers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mean", (math.nan, 0.0, 0.0)),
        ("mean", (math.inf, 0.0, 0.0)),
        ("std", (math.inf, 1.0, 1.0)),
        ("std", (math.nan,) * 3),
        ("allow_stretch", math.inf),
        ("fill_value", math.nan),
        ("resize", math.nan),
    ],
)
def test_nan_or_inf_in_a_transform_is_refused(field: str, value: object) -> None:
    with pytest.raises(OptionError, match=re.escape(f"Transform({field}=")):
        Transform(size=(16, 16), **{field: value})  # type: ignore[arg-type]


# -- user_fn results ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_fn", "says"),
    [
        (refusal_hooks.doubled_float64, r"float64 values in \[-?[\d.]+, [\d.]+\], outside"),
        (refusal_hooks.shifted_int64, r"int64 values in \[\d+, \d+\], outside"),
        (refusal_hooks.one_nan, r"float32 values with 1 NaN or infinite value"),
    ],
)
def test_a_user_fn_result_a_cast_would_wrap_fails_its_batch(
    poison_lmdb: Path, user_fn: Callable[..., np.ndarray], says: str
) -> None:
    spec = Transform(size=(16, 16), user_fn=user_fn)  # float32 CHW, normalised
    with _loader(poison_lmdb, transform=spec, sampling="natural") as loader:
        first = int(loader.sampler.epoch_ids(0)[0])
        with pytest.raises(WorkerError) as info:
            next(iter(loader))
        assert loader.stats.replaced == 0  # the user's code, not the record
    text = str(info.value)
    assert "TransformError" in text and user_fn.__name__ in text and re.search(says, text)
    assert info.value.record == first and f"record {first} (shard " in text
    assert "np.clip(x, 0, 255).astype(np.uint8)" in text


# -- weights ------------------------------------------------------------------------------


def test_weights_of_a_class_the_dataset_lacks_are_refused_and_names_are_taken(
    poison_lmdb: Path,
) -> None:
    lacks = r"7 is neither a class name nor a class id of the dataset; give class ids 0-2 or "
    with datumio.open(poison_lmdb) as ds:
        assert ds.class_names == ["cat", "dog", "eel"]
        with pytest.raises(OptionError, match=lacks + "names: cat, dog, eel"):
            Sampler(ds, weights={0: 1, 7: 5})
        with pytest.raises(OptionError, match="'kiwi' is neither"):
            Sampler(ds, weights={"kiwi": 1})
        by_name = Sampler(ds, weights={"cat": 1, "eel": 5}, seed=3)
        by_id = Sampler(ds, weights={0: 1, 2: 5}, seed=3)
        assert by_name.options.weights == {0: 1.0, 2: 5.0}
        np.testing.assert_array_equal(by_name.epoch_ids(0), by_id.epoch_ids(0))
        by_id.load_state_dict(by_name.state_dict())  # one plan, whichever keys built it
    with pytest.raises(OptionError, match=lacks):
        _loader(poison_lmdb, weights={0: 1, 7: 5})
    with _loader(poison_lmdb, weights={"dog": 1}) as loader:
        labels = np.concatenate([batch[1].copy() for batch in loader])
    assert labels.size == len(loader) * BATCH and set(labels.tolist()) == {1}


# -- epochs without a batch ---------------------------------------------------------------


def test_an_epoch_without_a_batch_is_refused(poison_lmdb: Path) -> None:
    with datumio.open(poison_lmdb) as ds:
        n = len(ds)
        with pytest.raises(OptionError, match=f"an epoch has {n} draws on this rank"):
            Sampler(ds).batches(n + 1)
        with pytest.raises(OptionError, match="pad=True"):
            Sampler(ds, rank=0, world_size=n + 1).batches(1)
    with pytest.raises(OptionError) as info:
        Loader(poison_lmdb, 64, transform=SPEC)
    text = str(info.value)
    assert "batch_size=64 with drop_last=True" in text and f"{n} draws on this rank" in text
    assert "drop_last=False" in text and f"batch_size of at most {n}" in text
    with pytest.raises(OptionError, match=f"{n // 2} draws on this rank \\({n} over 2 ranks\\)"):
        Loader(poison_lmdb, n, transform=SPEC, rank=0, world_size=2)
    with Loader(poison_lmdb, 64, transform=SPEC, drop_last=False, workers=1) as loader:
        assert len(loader) == 1
        assert [len(batch[1]) for batch in loader] == [n]


# -- states -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda loader: None, "got NoneType, not a datumio state"),
        (lambda loader: {"_num_yielded": 3, "_sampler_iter_yielded": 3}, "not a datumio state"),
        (lambda loader: loader.sampler.state_dict(), "this is a Sampler's state"),
        (lambda loader: {**loader.state_dict(), "position": 10**6}, "position 1000000 out of"),
        (lambda loader: {**loader.state_dict(), "position": -4}, "position -4 out of range"),
        (lambda loader: {**loader.state_dict(), "epoch": "one"}, "integer 'epoch'"),
    ],
)
def test_what_is_not_a_state_of_this_loader_is_refused(
    poison_lmdb: Path, make: Callable[[Loader], object], says: str
) -> None:
    with _loader(poison_lmdb, sampling="natural") as loader:
        batches = iter(loader)
        next(batches)
        place = (loader.epoch, loader.position)
        with pytest.raises(OptionError, match=re.escape(says)):
            loader.load_state_dict(make(loader))  # type: ignore[arg-type]
        assert (loader.epoch, loader.position) == place  # nothing moved
        assert (loader.sampler.epoch, loader.sampler.position) == (0, 0)


def test_what_is_not_a_sampler_state_is_refused(poison_lmdb: Path) -> None:
    with _loader(poison_lmdb) as loader:
        loader_state = loader.state_dict()
    with datumio.open(poison_lmdb) as ds:
        sampler = Sampler(ds)
        with pytest.raises(OptionError, match="got NoneType, not a datumio state"):
            sampler.load_state_dict(None)  # type: ignore[arg-type]
        with pytest.raises(OptionError, match=re.escape("its sampler's is state['sampler']")):
            sampler.load_state_dict(loader_state)
        sampler.load_state_dict(loader_state["sampler"])  # the fix the message gives


# -- /dev/shm -----------------------------------------------------------------------------

#: Builds a Loader and starts it; prints the LoaderError's text as JSON.
_SHM_CHILD = """
import json, sys
from datumio import LoaderError, Transform
from datumio.loader import Loader
loader = Loader(sys.argv[1], 4, workers=1, transform=Transform(size=(16, 16), dtype="uint8"))
try:
    loader.start()
    print(json.dumps("started"))
except LoaderError as exc:
    print(json.dumps(str(exc)))
finally:
    loader.close()
"""
#: Mounts only in the child's private mount namespace. Never ``mount -o remount,ro
#: /dev/shm``: a remount changes the tmpfs itself, which the host shares.
_SHM_SETUPS = {
    "read-only": "mount -t tmpfs -o ro tmpfs /dev/shm",
    "missing": "mount -t tmpfs tmpfs /dev && mknod -m 666 /dev/null c 1 3",
}
_NO_MOUNT = 97


def _in_private_mounts(setup: str, path: Path) -> str:
    """The child's LoaderError text, run after ``setup`` in a mount namespace of its own."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) here to make a private mount namespace")
    unshare = ["unshare", "--mount", "--propagation", "private"]
    probe = subprocess.run(
        [*unshare, "true"], capture_output=True, text=True, timeout=PROC_TIMEOUT_S
    )
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace for this user: {probe.stderr.strip()}")
    script = f'{setup} || exit {_NO_MOUNT}; exec "$0" -c "$1" "$2"'
    done = subprocess.run(
        [*unshare, "sh", "-c", script, sys.executable, _SHM_CHILD, path],
        capture_output=True,
        text=True,
        timeout=PROC_TIMEOUT_S,
    )
    if done.returncode == _NO_MOUNT:
        pytest.skip(f"mounting in a private namespace is not permitted: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    text: str = json.loads(done.stdout.strip().splitlines()[-1])
    return text


@pytest.mark.parametrize(
    ("kind", "says"), [("read-only", "mount -o remount,rw"), ("missing", "mount -t tmpfs")]
)
def test_a_read_only_or_missing_dev_shm_is_named_with_the_fix(
    poison_lmdb: Path, kind: str, says: str
) -> None:
    text = _in_private_mounts(_SHM_SETUPS[kind], poison_lmdb)
    assert text.startswith(f"/dev/shm is {kind}, so the loader cannot create"), text
    assert says in text and "--shm-size" in text
    assert "batch_size" not in text and "MiB free" not in text  # no smaller loader helps


# -- user code that exits -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_fn", "says"),
    [
        (refusal_hooks.exits_3, "called sys.exit(3)"),
        (refusal_hooks.interrupts, "raised KeyboardInterrupt"),
    ],
)
def test_a_user_fn_that_exits_fails_its_batch_and_the_workers_live_on(
    poison_lmdb: Path, user_fn: Callable[..., np.ndarray], says: str
) -> None:
    spec = Transform(size=(16, 16), dtype="uint8", layout="HWC", user_fn=user_fn)
    with _loader(poison_lmdb, transform=spec, sampling="natural", workers=2) as loader:
        loader.start()
        pids = loader.worker_pids
        first = int(loader.sampler.epoch_ids(0)[0])
        with pytest.raises(WorkerError) as info:
            next(iter(loader))
        text = str(info.value)
        assert "TransformError" in text and user_fn.__name__ in text and says in text
        assert info.value.record == first and f"record {first} (shard " in text
        with pytest.raises(WorkerError, match=re.escape(says)):
            next(iter(loader))  # the loader stays usable; the batch fails the same way
        assert loader.worker_pids == pids and loader.stats.worker_restarts == 0
        assert loader.stats.replaced == 0


def test_a_data_loader_that_exits_fails_its_batch_naming_the_sample(tmp_path: Path) -> None:
    paths = [str(tmp_path / f"{k}.npy") for k in range(8)]
    gen = DataGenerator(paths, data_loader=refusal_hooks.loader_exits_4_in_a_worker)
    with pytest.raises(WorkerError) as info:
        list(gen.get_batch(4, workers=1, rng_seed=0))
    text = str(info.value)
    assert "datagen worker 0 failed at batch 0, sample 0" in text
    assert "called sys.exit(4)" in text and "killed" not in text  # not blamed on the files
