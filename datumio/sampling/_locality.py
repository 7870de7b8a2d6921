"""The locality order: the same draws as the stratified order, read a window of shards at a time.

For disks where random reads are expensive (HDDs, network file systems). The epoch's draws
are exactly those of the stratified plan, and every position keeps its class, so the
quotas, each batch's class mix (every class spread evenly over the batches) and every
record's number of draws are unchanged; only which member of a class lands at which of
that class's positions changes. Shards are grouped into
windows of ``window`` consecutive shards, the windows taken in an order drawn per epoch;
each class hands out its draws window by window, in random order inside a window, as its
positions go by. The stratified layout spreads each class evenly over the batches, so all
classes move through the windows together (a class whose draws are not spread evenly over
the windows drifts by about a window): where classes share shards, a batch reads from a
window or two of shards instead of from all of them (40 shards, windows of 2: 3.9
shards per batch of 16 against 13.4 stratified). Where each class has shards of its own
(an ingest of class folders), a batch still reads about one shard per class it holds.
``datumio inspect --sampling`` reports the shards a batch reads from.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
#: Domain tag of the locality order's random stream ("locl").
_TAG = 0x6C6F636C


def local_order(
    ids: I64, classes: I64, shard_offsets: npt.ArrayLike, window: int, seed: int, epoch: int
) -> I64:
    """``ids`` (the epoch plan's draws, by position) reordered within each class.

    Args:
        ids: record id of every plan position.
        classes: class of every plan position.
        shard_offsets: ``[S + 1]`` first record id of each shard, then the record count.
        window: shards per window (>= 1).
        seed, epoch: the window order and the order inside a window derive from them.
    """
    offsets = np.asarray(shard_offsets, dtype=np.int64)
    shard = np.searchsorted(offsets, ids, side="right") - 1
    windows = -(-(len(offsets) - 1) // window)
    rng = np.random.Generator(np.random.Philox(np.random.SeedSequence([seed, _TAG, epoch])))
    window_rank = rng.permutation(windows)[shard // window]
    tie = rng.random(len(ids))
    draws = np.lexsort((tie, window_rank, classes))  # each class: window by window, shuffled
    positions = np.argsort(classes, kind="stable")  # each class: its positions in order
    out = np.empty_like(ids)
    out[positions] = ids[draws]
    return out


def lockstep_order(
    ids: I64, classes: I64, shard_offsets: npt.ArrayLike, window: int, seed: int, epoch: int
) -> I64:
    """``ids`` redrawn so that every class reads the same window of shards at the same time.

    The epoch is cut into one phase per window (in the window order of :func:`local_order`),
    each as long as that window's share of the plan's draws. A position of class ``c`` in
    phase ``j`` takes one of ``c``'s plan draws that lie in window ``j``, cycling through them
    in random order (a class with none there takes them from the next window that has
    some). Every position keeps its class, so quotas and each batch's class mix are those of
    the stratified plan; a record's number of draws now follows its window (a class's
    draws in a window are spread over its records there), so a batch reads from one window
    (two at a phase boundary) plus the windows of classes absent from the current one.
    """
    offsets = np.asarray(shard_offsets, dtype=np.int64)
    n = len(ids)
    if n == 0:
        return ids.copy()
    windows = -(-(len(offsets) - 1) // window)
    rng = np.random.Generator(np.random.Philox(np.random.SeedSequence([seed, _TAG, epoch])))
    rank_of = rng.permutation(windows)
    rng = np.random.Generator(np.random.Philox(np.random.SeedSequence([seed, _TAG, epoch, 1])))
    draw_window = rank_of[(np.searchsorted(offsets, ids, side="right") - 1) // window]
    # Phase of every position: windows take turns, each for its share of the draws.
    ends = np.cumsum(np.bincount(draw_window, minlength=windows))
    phase = np.minimum(np.searchsorted(ends, np.arange(n), side="right"), windows - 1)
    # The draws grouped by (class, window), random order inside a group.
    draw_key = classes * windows + draw_window
    order = np.lexsort((rng.random(n), draw_key))
    keys, starts, counts = np.unique(draw_key[order], return_index=True, return_counts=True)
    # Each position's group: its (class, phase), or the class's next window with draws.
    want = classes * windows + phase
    g = np.searchsorted(keys, want)
    wrapped = (g == len(keys)) | (keys[np.minimum(g, len(keys) - 1)] // windows != classes)
    g[wrapped] = np.searchsorted(keys, classes[wrapped] * windows)  # the class's first window
    # k-th position of a (class, phase) in time order takes draw k (cycling) of its group.
    by_want = np.lexsort((np.arange(n), want))
    first = np.r_[0, np.flatnonzero(np.diff(want[by_want])) + 1]
    k = np.arange(n) - np.repeat(first, np.diff(np.r_[first, n]))
    out = np.empty_like(ids)
    pos = by_want
    grp = g[pos]
    out[pos] = ids[order[starts[grp] + k % counts[grp]]]
    return out
