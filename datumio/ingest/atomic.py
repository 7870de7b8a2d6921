"""A dataset is complete or absent: build under a temporary name, rename into place.

The temporary directory sits beside OUT as ``.NAME.tmp-PID-TOKEN`` (hidden, same
filesystem, so the final rename is atomic). A later run removes temporaries whose
process is gone, so a kill -9 at any moment leaves nothing that blocks the next run;
with ``--resume`` it first adopts (renames to its own name) the one whose ``plan.json``
matches its own plan, and finishes it. Runs hold OUT's writer lock
(:mod:`datumio.ingest.lock`) meanwhile, so no other run is building OUT.

Replacing an existing OUT (``--overwrite``) swaps the two directories in one step with
Linux's ``renameat2(RENAME_EXCHANGE)``, so OUT is never missing, not even for a moment; where
that call is not available (another OS, an old kernel or a filesystem without it) the old
OUT is renamed aside first, leaving a window of microseconds without OUT.

``--overwrite`` deletes only what datumio wrote: OUT must be a datumio dataset holding
nothing but a dataset's files, or an empty directory (:func:`check_replaceable`), and never
a path that holds the input, the labels file or the home directory. It is checked before the
run and again just before the swap.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable, Sequence

from datumio._process import pid_alive
from datumio.errors import DiskFullError, IngestError
from datumio.ingest.disk import full_disk, full_reason
from datumio.ingest.plan import PLAN_FILE, Plan, read_fingerprint, write_plan
from datumio.ingest.sidecar import SIDECARS_DIR
from datumio.shards import format as fmt
from datumio.shards.manifest import names_datumio_format


def _tmp_prefix(out: str) -> str:
    parent, name = os.path.split(os.path.abspath(out))
    return os.path.join(parent, f".{name}.tmp-")


def _dead_temporaries(out: str, mine: bool = False) -> list[str]:
    """Temporaries of ``out`` whose process is gone (``mine``: or is this process)."""
    prefix = _tmp_prefix(out)
    parent, base = os.path.split(prefix)
    if not os.path.isdir(parent):
        return []
    found = []
    for name in sorted(os.listdir(parent)):
        if not name.startswith(base):
            continue
        pid_text = name[len(base) :].split("-", 1)[0]
        if pid_text.isdigit() and (
            not pid_alive(int(pid_text)) or (mine and int(pid_text) == os.getpid())
        ):
            found.append(os.path.join(parent, name))
    return found


def clean_stale(out: str) -> list[str]:
    """Remove temporaries of ``out`` left by dead runs; returns what was removed."""
    removed = _dead_temporaries(out)
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def adopt(out: str, matches: Callable[[str], bool]) -> str | None:
    """Take over a dead run's temporary for which ``matches(path)`` holds.

    It is renamed to a name carrying this process's pid (so no other run removes it as
    stale, and tasks still running for the dead run can no longer write into it).
    One that this process left (a run that failed and kept its build) counts as dead:
    the caller holds OUT's writer lock, so no run of this process is building it.
    Returns the new path, or None when there is none.
    """
    for path in _dead_temporaries(out, mine=True):
        if "-old-" in os.path.basename(path) or not matches(path):
            continue
        mine = f"{_tmp_prefix(out)}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            os.rename(path, mine)
        except OSError:
            continue  # another resuming run took it first
        return mine
    return None


def make_tmp(out: str) -> str:
    """Create and return a fresh temporary directory for building ``out``."""
    path = f"{_tmp_prefix(out)}{os.getpid()}-{secrets.token_hex(4)}"
    os.makedirs(path)
    return path


def build_dir(out: str, plan: Plan, resume: bool) -> str:
    """The temporary directory to build ``out`` by ``plan`` in.

    With ``resume``, the temporary of a dead run whose ``plan.json`` has the same
    fingerprint (:func:`adopt`), its finished shards kept; else a fresh one holding the
    plan. Other stale temporaries of ``out`` are removed.
    """
    tmp = adopt(out, lambda path: read_fingerprint(path) == plan.fingerprint) if resume else None
    clean_stale(out)
    if tmp is not None:
        return tmp
    tmp = make_tmp(out)
    try:
        write_plan(tmp, plan)
    except BaseException:
        discard(tmp)
        raise
    return tmp


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None  # glibc < 2.28, or another libc without it
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange(a: str, b: str) -> bool:
    """Swap the paths ``a`` and ``b`` atomically; False when the system cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # kernel or filesystem without RENAME_EXCHANGE: use two renames
    raise OSError(err, os.strerror(err), b)


#: What a dataset directory holds at its top level (``docs/format.md``), and the temporary
#: name of a manifest being rewritten.
_DATASET_ENTRY = re.compile(
    r"^(manifest\.json|index|shards|rejects(-g\d+)?\.jsonl|manifest\.json\.tmp-\d+)$"
)


def _contains(outer: str, inner: str) -> bool:
    """``inner`` is ``outer`` or lies below it (both real, absolute paths)."""
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def check_replaceable(out: str, protected: Sequence[str] = ()) -> None:
    """Raise unless ``--overwrite`` may replace what is at ``out``.

    Replaceable: a datumio dataset (a readable ``manifest.json`` of the datumio format and
    nothing beside a dataset's own files) or an empty directory. Never: a symbolic link, a
    file, a path that holds one of ``protected`` (the input, its labels file) or the home
    directory, or the filesystem root.

    Raises:
        IngestError: what is at ``out``, why it stays, and what to do.
    """
    out = os.path.abspath(out)
    if not os.path.lexists(out):
        return
    keep = "; choose another OUT, or move it away yourself if it may go"
    if os.path.islink(out):
        raise IngestError(
            f"{out} is a symbolic link (to {os.readlink(out)}): --overwrite replaces only a "
            f"dataset directory itself, not a link{keep}"
        )
    real = os.path.realpath(out)
    home = os.path.realpath(os.path.expanduser("~"))
    for what, path in [*(("the input", p) for p in protected), ("your home directory", home)]:
        if _contains(real, os.path.realpath(path)):
            raise IngestError(
                f"{out} holds {what} ({path}): --overwrite would delete it; write the dataset "
                "to a new path beside it instead"
            )
    if not os.path.isdir(out):
        raise IngestError(
            f"{out} is a file, not a datumio dataset: --overwrite replaces only a datumio "
            f"dataset or an empty directory{keep}"
        )
    entries = sorted(os.listdir(out))
    if not entries:
        return
    if not names_datumio_format(os.path.join(out, fmt.MANIFEST)):
        shown = ", ".join(entries[:5]) + (
            f" and {len(entries) - 5} more" if len(entries) > 5 else ""
        )
        raise IngestError(
            f"{out} is not a datumio dataset (no readable datumio manifest.json; it holds "
            f"{shown}): --overwrite replaces only a datumio dataset or an empty directory{keep}"
        )
    foreign = [name for name in entries if not _DATASET_ENTRY.match(name)]
    if foreign:
        raise IngestError(
            f"{out} is a datumio dataset but also holds files datumio did not write "
            f"({', '.join(foreign[:5])}): --overwrite would delete them; move them out of {out} "
            "first"
        )


def publish(
    tmp: str,
    out: str,
    overwrite: bool,
    protected: Sequence[str] = (),
    events: Callable[[str], None] | None = None,
) -> None:
    """Rename the finished ``tmp`` to ``out``; an existing ``out`` needs ``overwrite`` and
    must pass :func:`check_replaceable` (again: it may have changed during the run).

    ``events("published")`` is called just after the swap, before the old dataset is
    removed (fault tests stop the process there).
    """
    out = os.path.abspath(out)
    old = None
    if os.path.lexists(out):
        if not overwrite:
            raise IngestError(f"{out} already exists; pass --overwrite to replace it")
        check_replaceable(out, protected)
        old = f"{_tmp_prefix(out)}{os.getpid()}-old-{secrets.token_hex(4)}"
        try:
            swapped = exchange(tmp, out)
        except OSError as exc:
            raise IngestError(f"cannot move the finished dataset into {out}: {exc}") from exc
        if swapped:
            os.rename(tmp, old)  # the previous OUT, now at tmp
            _fsync_dir(os.path.dirname(out))
            if events is not None:
                events("published")
            _remove(old)
            return
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError as exc:
        if old is not None:
            os.rename(old, out)
        raise IngestError(f"cannot move the finished dataset into {out}: {exc}") from exc
    _fsync_dir(os.path.dirname(out))
    if events is not None:
        events("published")
    if old is not None:
        _remove(old)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        os.remove(path)


def after_failure(exc: BaseException, tmp: str | None, resume: bool) -> BaseException:
    """What a run that failed with ``exc`` raises, once it kept or removed its build ``tmp``.

    A full disk is a :class:`DiskFullError` wherever it struck. The build is kept for a
    later ``--resume`` when it can be resumed (its plan is there) and the disk was full or
    the run had ``resume`` (any failure, Ctrl-C included); the error then says where it is
    and how to reuse or remove it. Otherwise nothing of the run is left.
    """
    error = exc
    reason = None if isinstance(exc, DiskFullError) else full_reason(exc)
    if reason is not None:
        where = getattr(exc, "filename", None)
        error = full_disk(os.fsdecode(where) if where else tmp or "OUT's folder", reason)
    if tmp is None:
        return error
    resumable = os.path.isfile(os.path.join(tmp, PLAN_FILE))
    if not (resumable and (resume or isinstance(error, DiskFullError))):
        discard(tmp)
        return error
    if not isinstance(error, Exception):
        return error  # Ctrl-C: the tools say so
    folder = os.path.join(tmp, SIDECARS_DIR)
    done = sum(n.endswith(".npz") for n in os.listdir(folder)) if os.path.isdir(folder) else 0
    kept = (
        f"the unfinished build is kept in {tmp} with {done} finished shard(s): run the same "
        "command again with --resume (IngestOptions(resume=True)) to reuse them, or delete "
        f"{tmp} to give its space back"
    )
    if isinstance(error, DiskFullError):
        return DiskFullError(f"{error.args[0]}; {kept}", error.path)
    error.add_note(kept)
    return error


def discard(tmp: str) -> None:
    """Remove an unfinished temporary directory."""
    shutil.rmtree(tmp, ignore_errors=True)
