"""A chunk's image arrays handed to its ingest worker through shared memory, not a pipe.

Pickling a uint8 image and sending it down the process pool's pipe costs the driver about
as much as encoding it costs the worker (a 256 x 340 x 3 image: 0.5 ms either way), so a
:class:`datumio.Writer` fed arrays would keep the driver busy. Instead the driver copies
the chunk's arrays into one segment (:class:`datumio._shm.Segment`, one memcpy each) and
the task carries only where each lies (:class:`SharedImages`); the worker maps the segment
and reads the arrays in place. The driver unlinks the segment once the task is answered,
or when the run stops (the resource tracker does it if the driver dies). Where no segment
can be made (``/dev/shm`` small or missing), the arrays go through the pipe as before.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from datumio._shm import NAME_PREFIX, Segment

_ALIGN = 64


@dataclass(frozen=True)
class SharedImages:
    """Where a task's image arrays lie in a segment: plain, picklable data."""

    name: str
    size: int
    #: item index -> (byte offset, shape) of its array.
    places: dict[int, tuple[int, tuple[int, ...]]]

    def arrays(self, segment: Segment) -> dict[int, np.ndarray]:
        """The arrays, as views of ``segment`` (this description's, mapped)."""
        out = {}
        for k, (offset, shape) in self.places.items():
            count = int(np.prod(shape))
            out[k] = np.frombuffer(segment.mmap, np.uint8, count, offset).reshape(shape)
        return out


def share(images: Sequence[object]) -> tuple[SharedImages, Segment] | None:
    """Copy the arrays among ``images`` into a new segment; None when there are none, or
    no segment can be made (the caller then sends them through the pipe)."""
    places: dict[int, tuple[int, tuple[int, ...]]] = {}
    size = 0
    for k, image in enumerate(images):
        if isinstance(image, np.ndarray):
            places[k] = (size, tuple(image.shape))
            size += -(-image.nbytes // _ALIGN) * _ALIGN
    if not places:
        return None
    name = f"{NAME_PREFIX}{os.getpid()}_{secrets.token_hex(4)}_ingest"
    try:
        segment = Segment(name, size, create=True)
    except OSError:
        return None
    shared = SharedImages(name, size, places)
    for k, view in shared.arrays(segment).items():
        np.copyto(view, np.asarray(images[k]))  # an array: ``places`` holds arrays only
    return shared, segment


def attach(shared: SharedImages) -> tuple[dict[int, np.ndarray], Segment]:
    """The worker's side: the arrays (views) and the mapping to close when done."""
    segment = Segment(shared.name, shared.size, create=False)
    return shared.arrays(segment), segment
