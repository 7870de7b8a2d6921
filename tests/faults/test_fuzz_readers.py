"""Fuzz the dataset readers with damaged files: every read is right, or a DatumioError.

Each example copies a small pristine dataset (LMDB or HDF5, 30 records in 4 shards, with
groups), damages one of its files (manifest, an index .npy, or a shard) by byte flips,
truncation or extension, and runs the readers on the copy: ``datumio.open`` and every
record, ``verify``, ``datumio-inspect``, and (fewer examples, it starts a worker) one
Loader batch. A reader may refuse with a :class:`~datumio.errors.DatumioError`; anything
else (another exception type, a label or a pixel that differs from the pristine dataset's,
a hang) fails the example, whose message names the file, the mutation and what went wrong.
``verify`` and the readers must also agree: a record verify names must fail to read, and
a dataset verify calls sound must read back exactly.

CI runs a bounded, derandomised set of examples; ``DATUMIO_FUZZ=long`` a long random run
(``fuzz_support.py``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import numpy as np
import pytest
from fuzz_support import (
    BACKENDS,
    LONG,
    UNCHANGED,
    Mutation,
    Pristine,
    build_pristine,
    damaged_copy,
    describe,
    fuzz_settings,
    mutations,
    pixels_equal,
)
from hypothesis import given, note
from hypothesis import strategies as st

import datumio
from datumio.errors import DatumioError
from datumio.shards.verify import VerifyReport, verify
from datumio.tools import inspect_cmd

pytestmark = [
    pytest.mark.faults,
    # numpy parses a damaged .npy header as Python literals: stray backslashes warn.
    pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:invalid escape sequence:SyntaxWarning"),
]

READERS = fuzz_settings(ci_examples=250, long_examples=2000)
LOADER = fuzz_settings(ci_examples=25, long_examples=300)
#: Per test (all its examples); generous, so only a hang trips it.
TIMEOUT_S = 3 * 3600 if LONG else 300
BATCH = 8
#: Longer than any honest first batch of 8 tiny records; a LoaderError saying no batch
#: arrived in this time is a hang, not an acceptable refusal.
BATCH_TIMEOUT_S = 60.0

T = TypeVar("T")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pristine]:
    return build_pristine(tmp_path_factory.mktemp("fuzz-readers"))


# -- outcomes ----------------------------------------------------------------------------


def refusal(exc: BaseException, action: str, mutation: Mutation) -> DatumioError:
    """``exc`` if it is an acceptable refusal: a DatumioError that does not pass on numpy's
    advice to unpickle; anything else fails the example (chained, so hypothesis tells
    distinct failures apart by where the library raised)."""
    if not isinstance(exc, DatumioError):
        raise AssertionError(
            f"[{mutation}] {action} raised {describe(exc)}: expected a DatumioError"
        ) from exc
    text = str(exc)
    assert "allow_pickle" not in text and "unsafely" not in text, (
        f"[{mutation}] {action}: the error passes on unpickling advice: {text}"
    )
    return exc


def attempt(
    action: str, mutation: Mutation, fn: Callable[[], T]
) -> tuple[T | None, DatumioError | None]:
    """``(fn(), None)``, or ``(None, error)`` for a DatumioError; anything else fails."""
    try:
        return fn(), None
    except Exception as exc:
        return None, refusal(exc, action, mutation)


@dataclass
class Reads:
    """What reading the damaged copy gave: whether it opened, and the records refused."""

    opened: bool
    open_error: str = ""
    refused: dict[int, str] = field(default_factory=dict)

    @property
    def all_read(self) -> bool:
        return self.opened and not self.refused


def read_every_record(ref: Pristine, path: str, mutation: Mutation) -> Reads:
    """Open the copy and read every record twice (``ds[i]``, ``ds.stored(i)``): each read
    gives the pristine label, pixels, payload and shape, or raises a DatumioError."""
    ds, error = attempt("datumio.open", mutation, partial(datumio.open, path))
    if ds is None:
        return Reads(opened=False, open_error=str(error))
    reads = Reads(opened=True)
    with ds:
        assert len(ds) == len(ref), (
            f"[{mutation}] datumio.open gives {len(ds)} records, the pristine dataset "
            f"{len(ref)}: a damaged manifest or index was accepted"
        )
        for i in range(len(ref)):
            item, error = attempt(f"ds[{i}]", mutation, partial(ds.__getitem__, i))
            if item is not None:
                pixels, label = item
                assert label == ref.labels[i], (
                    f"[{mutation}] ds[{i}] returned label {label}, the pristine dataset has "
                    f"{ref.labels[i]}: a wrong label passed silently"
                )
                assert pixels_equal(pixels, ref.images[i]), (
                    f"[{mutation}] ds[{i}] returned pixels that differ from the pristine "
                    f"record's ({pixels.shape} vs {ref.images[i].shape}): silently wrong pixels"
                )
            else:
                reads.refused[i] = str(error)
            record, error = attempt(f"ds.stored({i})", mutation, partial(ds.stored, i))
            if record is not None:
                payload, label, shape = record
                assert (payload, label, shape) == (ref.payloads[i], ref.labels[i], ref.shapes[i]), (
                    f"[{mutation}] ds.stored({i}) returned label {label}, shape {shape} and "
                    f"{len(payload)} payload bytes; the pristine record has label "
                    f"{ref.labels[i]}, shape {ref.shapes[i]} and {len(ref.payloads[i])} bytes "
                    f"(payload equal: {payload == ref.payloads[i]})"
                )
            else:
                reads.refused.setdefault(i, str(error))
    return reads


def run_verify(path: str, decode: bool, mutation: Mutation) -> VerifyReport | None:
    report, _ = attempt(f"verify(decode={decode})", mutation, partial(verify, path, decode=decode))
    if report is not None:
        note(f"verify: ok={report.ok} problems={[str(p) for p in report.problems]}")
    return report


def check_verify_agrees(report: VerifyReport, reads: Reads, n: int, mutation: Mutation) -> None:
    """Where verify finds a damaged record, reading it fails; where it finds none, all read."""
    if report.ok:
        what = (
            f"datumio.open refused it ({reads.open_error})"
            if not reads.opened
            else f"records {sorted(reads.refused)} were refused "
            f"(e.g. {next(iter(reads.refused.values()), '')})"
        )
        assert reads.all_read, f"[{mutation}] verify reports the dataset sound, but {what}"
    for problem in report.problems:
        if problem.record is None:
            continue
        assert 0 <= problem.record < n, f"[{mutation}] verify names record {problem.record}"
        if reads.opened:
            assert problem.record in reads.refused, (
                f"[{mutation}] verify reports '{problem}', but ds[{problem.record}] read the "
                "record without an error"
            )


def run_inspect(ref: Pristine, path: str, mutation: Mutation, *flags: str) -> None:
    """``datumio-inspect --json --quiet``: exit 0 with the right counts, or 1 with a message;
    never an exception or a traceback."""
    argv = ["--json", "--quiet", *flags, path]
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            status = inspect_cmd.main(argv)
    except Exception as exc:
        raise AssertionError(
            f"[{mutation}] datumio-inspect {' '.join(flags)} raised {describe(exc)}"
        ) from exc
    stderr = err.getvalue()
    action = f"datumio-inspect {' '.join(argv[:-1])}"
    assert status in (0, 1), f"[{mutation}] {action} exited {status}: {stderr}"
    assert "Traceback" not in stderr, f"[{mutation}] {action} printed a traceback: {stderr}"
    assert "allow_pickle" not in stderr and "unsafely" not in stderr, (
        f"[{mutation}] {action}: unpickling advice: {stderr}"
    )
    if status == 1:
        assert stderr.strip(), f"[{mutation}] {action} exited 1 without a message"
        return
    summary = json.loads(out.getvalue())
    counts = np.bincount(np.asarray(ref.labels), minlength=summary["num_classes"]).tolist()
    assert summary["records"] == len(ref), f"[{mutation}] {action}: {summary['records']} records"
    assert [c["count"] for c in summary["classes"]] == counts, (
        f"[{mutation}] {action}: class counts {summary['classes']}, pristine {counts}"
    )


# -- the readers -------------------------------------------------------------------------


@pytest.mark.timeout(TIMEOUT_S)
@pytest.mark.parametrize("backend", list(BACKENDS))
@READERS
@given(data=st.data())
def test_readers_refuse_or_read_right(
    pristine: dict[str, Pristine], backend: str, data: st.DataObject
) -> None:
    """open + every record, verify, inspect: right, or refused with a DatumioError."""
    ref = pristine[backend]
    mutation = data.draw(mutations(ref), label="mutation")
    decode = data.draw(st.booleans(), label="verify decode")
    with damaged_copy(ref, mutation) as path:
        reads = read_every_record(ref, path, mutation)
        report = run_verify(path, decode, mutation)
        if report is not None:
            check_verify_agrees(report, reads, len(ref), mutation)
        run_inspect(ref, path, mutation)
        run_inspect(ref, path, mutation, "--no-duplicates")


# -- the loader --------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """A Loader batch, copied out of its shared-memory slot."""

    images: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    replaced: dict[int, int]  # failed record id -> times replaced (loader.stats)

    def __repr__(self) -> str:
        return f"Batch(ids={self.ids.tolist()}, labels={self.labels.tolist()})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' printer
        printer.text(repr(self))


def first_batch(path: str, strict: bool) -> Batch:
    """The first batch of a one-worker Loader, copied out of shared memory."""
    with datumio.Loader(
        path,
        BATCH,
        workers=1,
        seed=0,
        strict=strict,
        extras=("ids",),
        batch_timeout_s=BATCH_TIMEOUT_S,
    ) as loader:
        images, labels, ids = next(iter(loader))
        return Batch(
            np.array(images), np.array(labels), np.array(ids), dict(loader.stats.replaced_ids)
        )


@pytest.fixture(scope="module")
def pristine_batches(pristine: dict[str, Pristine]) -> dict[str, Batch]:
    """The first batch of each pristine dataset; its pixels are the stored ones."""
    out = {}
    for backend, ref in pristine.items():
        batch = first_batch(ref.path, strict=True)
        assert not batch.replaced
        for k, i in enumerate(batch.ids.tolist()):
            assert batch.labels[k] == ref.labels[i] and pixels_equal(batch.images[k], ref.images[i])
        out[backend] = batch
    return out


def check_batch(ref: Pristine, want: Batch, got: Batch, strict: bool, mutation: Mutation) -> None:
    """Strict: the pristine batch exactly. Not strict: that, except records the loader
    counts as replaced, each by a record of the same class with that record's pixels."""
    where = f"[{mutation}] Loader(strict={strict}) first batch"
    assert got.images.shape == want.images.shape, (
        f"{where} has images of shape {got.images.shape}, the pristine batch "
        f"{want.images.shape}: the output size changed silently"
    )
    for k, (i, j) in enumerate(zip(want.ids.tolist(), got.ids.tolist(), strict=True)):
        assert 0 <= j < len(ref), f"{where}: position {k} holds record {j}, not a record id"
        if j != i:
            assert not strict and i in got.replaced, (
                f"{where}: position {k} holds record {j} (class {ref.labels[j]}) where the "
                f"pristine batch has record {i} (class {ref.labels[i]}), and the loader "
                f"replaced {sorted(got.replaced) or 'no record'}: the batch differs silently"
            )
            assert ref.labels[j] == ref.labels[i], (
                f"{where}: record {i} (class {ref.labels[i]}) was replaced by record {j} of "
                f"class {ref.labels[j]}"
            )
        assert got.labels[k] == ref.labels[j], (
            f"{where}: position {k} (record {j}) has label {got.labels[k]}, the pristine "
            f"dataset {ref.labels[j]}: a wrong label passed silently"
        )
        assert pixels_equal(got.images[k], ref.images[j]), (
            f"{where}: position {k} (record {j}) has pixels that differ from the pristine "
            "record's: silently wrong pixels"
        )


@pytest.mark.timeout(TIMEOUT_S)
@pytest.mark.parametrize("backend", list(BACKENDS))
@LOADER
@given(data=st.data())
def test_loader_batch_refuses_or_matches(
    pristine: dict[str, Pristine],
    pristine_batches: dict[str, Batch],
    backend: str,
    data: st.DataObject,
) -> None:
    """One Loader batch: the pristine one (up to counted replacements), or a DatumioError."""
    ref, want = pristine[backend], pristine_batches[backend]
    # Only the first batch is read: aim at its records' bytes where the file has some.
    focus = frozenset(want.ids.tolist())
    mutation = data.draw(mutations(ref, focus), label="mutation")
    strict = data.draw(st.booleans(), label="strict")
    with damaged_copy(ref, mutation) as path:
        got, error = attempt(
            f"Loader(strict={strict})", mutation, partial(first_batch, path, strict)
        )
        # The loader turns a stuck worker into a LoaderError after batch_timeout_s: a
        # refusal by its type, but a hang.
        assert error is None or "no batch arrived" not in str(error), f"[{mutation}] {error}"
    if got is not None:
        check_batch(ref, want, got, strict, mutation)


def test_pristine_datasets_read_back(pristine: dict[str, Pristine]) -> None:
    """The oracle itself: an unchanged copy reads back exactly and verifies sound."""
    for ref in pristine.values():
        with damaged_copy(ref, UNCHANGED) as path:
            assert read_every_record(ref, path, UNCHANGED).all_read
            report = verify(path, decode=True)
            assert report.ok, report.problems
            run_inspect(ref, path, UNCHANGED)
