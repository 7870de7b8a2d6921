"""A full disk is an error that says where and what to do, never a traceback.

LMDB, h5py and plain writes each report a full filesystem their own way: an ``OSError``
with ``errno`` ENOSPC or EDQUOT, h5py's ``OSError`` whose text holds "No space left on
device", and LMDB's ``lmdb.Error`` (``mdb_txn_commit: No space left on device``, or
``Input/output error`` after a short write). :func:`writing` turns each of them, met while
writing a file, into one :class:`~datumio.errors.DiskFullError` that names the file and the
space left on its filesystem.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator

from datumio.errors import DiskFullError

#: errno values a full (or failing) disk shows; EIO is LMDB's word for a short write.
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EIO)


def full_reason(exc: BaseException) -> str | None:
    """What the full-disk error ``exc`` says (``No space left on device``), or None when it
    is another error. ``lmdb.MapFullError`` (the map, not the disk) is not one."""
    code = exc.errno if isinstance(exc, OSError) and exc.errno in _FULL else None
    if code is None and (isinstance(exc, OSError) or type(exc).__module__.startswith("lmdb")):
        code = next((e for e in _FULL if os.strerror(e) in str(exc)), None)
    if code is None:
        return None
    if code == errno.EIO:
        return f"{os.strerror(code)} (a write cut short: the disk is full, or failing)"
    return os.strerror(code)


def free_text(path: str) -> str:
    """The space free on ``path``'s filesystem now, as text (``"1.5 MiB free"``)."""
    folder = os.path.abspath(path)
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        value, unit = shutil.disk_usage(folder).free / 1024, "KiB"
    except OSError:
        return "free space unknown"
    for bigger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit} free"


def full_disk(path: str, reason: str) -> DiskFullError:
    """The error for a full disk met while writing ``path``."""
    return DiskFullError(
        f"cannot write {path}: {reason} ({free_text(path)} on its filesystem now); free "
        "space there, or write to a larger disk",
        path,
    )


def raise_if_full(exc: BaseException, path: str) -> None:
    """Raise :class:`~datumio.errors.DiskFullError` naming ``path`` (caused by ``exc``)
    when ``exc`` is a full disk met while writing ``path``; else return."""
    reason = None if isinstance(exc, DiskFullError) else full_reason(exc)
    if reason is not None:
        raise full_disk(path, reason) from exc


@contextlib.contextmanager
def writing(path: str) -> Iterator[None]:
    """Run a block that writes ``path``: a full disk met there raises
    :class:`~datumio.errors.DiskFullError` naming ``path``; other errors pass unchanged."""
    try:
        yield
    except Exception as exc:
        raise_if_full(exc, path)
        raise
