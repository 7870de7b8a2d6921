"""Batches handed out in order while later ones are being filled: the one ordering loop.

The Loader's epochs and the original API's passes (``datumio.datagen``) both run on it:
:func:`in_order` keeps up to ``ahead`` batches planned beyond the last one handed out, waits
for the workers when the next batch is not finished, and hands out finished batches by
number, whatever order the workers finish them in. A failed batch raises when its turn
comes, so every batch before it is handed out first.

The caller owns the pool, the slots and ``pending`` (finished batches by number, filled by
its ``dispatch`` and ``wait`` from the pool's messages): when the iteration ends early,
what is left in ``pending`` is the caller's to give back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from datumio.loader.messages import BatchDone, BatchFailed

#: Finished batches by number, and failed ones (raised when the loop reaches them).
Pending = dict[int, BatchDone | BatchFailed]


def in_order(
    total: int,
    ahead: int,
    dispatch: Callable[[int], bool],
    wait: Callable[[], None],
    pending: Pending,
    fail: Callable[[BatchFailed], BaseException],
) -> Iterator[BatchDone]:
    """Batches ``0 .. total - 1`` in order, each as its worker's :class:`BatchDone`.

    Args:
        total: batches in this pass.
        ahead: most batches planned beyond the last one handed out.
        dispatch: ``dispatch(b)`` sends batch ``b`` to the workers; False when it cannot
            yet (no free slot): it is tried again after the next hand-out or wait.
        wait: blocks until some worker message arrives and files it in ``pending``.
        pending: where ``dispatch`` and ``wait`` file finished and failed batches.
        fail: the exception to raise for a failed batch.
    """
    planned = handed = 0
    while handed < total:
        while planned < total and planned - handed < ahead and dispatch(planned):
            planned += 1
        done = pending.pop(handed, None)
        if done is None:
            wait()
            continue
        if isinstance(done, BatchFailed):
            raise fail(done)
        handed += 1
        yield done
