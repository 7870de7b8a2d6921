"""What a stream's samples become before their shard task: ids for names, checked images.

:class:`Names` gives class, group and split names their ids (see
:mod:`datumio.ingest.stream`); :class:`Chunk` is the next shard's samples as its task
carries them; :func:`image_of` tells what a sample's image is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class Names:
    """Names given ids in order of first appearance, or a fixed list (see the module)."""

    def __init__(self, what: str, fixed: Sequence[str] | None = None) -> None:
        self._what = what
        self.fixed = fixed is not None
        self.names: list[str] = list(fixed or ())
        self._ids = {name: i for i, name in enumerate(self.names)}
        self._ints: bool | None = None

    def id(self, value: int | str) -> int:
        """The id of ``value``. Raises ValueError (a reject's detail) for an unknown one."""
        if isinstance(value, bool) or not isinstance(value, int | str | np.integer):
            raise TypeError(f"a {self._what} is an int or a str, not {type(value).__name__}")
        if self.fixed:
            return self._fixed_id(value)
        ints = not isinstance(value, str)
        if self._ints is None:
            self._ints = ints
        elif self._ints != ints:
            raise TypeError(
                f"{self._what}s are all ints or all names: got {value!r} after "
                f"{'ints' if self._ints else 'names'} (give names= to mix them)"
            )
        if ints:
            number = int(value)
            if number < 0:
                raise ValueError(f"{self._what} {number} is below 0")
            while len(self.names) <= number:
                self.names.append(str(len(self.names)))
            return number
        found = self._ids.get(str(value))
        if found is None:
            found = self._ids[str(value)] = len(self.names)
            self.names.append(str(value))
        return found

    def _fixed_id(self, value: int | str) -> int:
        if isinstance(value, str):
            found = self._ids.get(value)
            if found is None:
                raise ValueError(f"{self._what} {value!r} is not one of the given names")
            return found
        if not 0 <= int(value) < len(self.names):
            raise ValueError(f"{self._what} {int(value)} is outside 0..{len(self.names) - 1}")
        return int(value)


@dataclass
class Chunk:
    """The samples of the next shard, as its task will carry them."""

    names: list[str] = field(default_factory=list)
    #: The paths to read (the name where the image is given inline).
    paths: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    splits: list[int] = field(default_factory=list)
    values: list[dict[str, Any] | None] = field(default_factory=list)
    images: list[bytes | np.ndarray | None] = field(default_factory=list)
    bytes: int = 0

    def __len__(self) -> int:
        return len(self.names)


def image_of(image: Any, root: str) -> tuple[str | None, bytes | np.ndarray | None, int]:
    """(path, inline data, size in bytes) of a sample's image.

    Raises:
        TypeError: neither bytes, an array nor a path; ValueError: an array that is not
            uint8 HxW or HxWxC (C in 1, 3, 4).
    """
    if isinstance(image, bytes | bytearray | memoryview):
        data = bytes(image)
        return None, data, len(data)
    if isinstance(image, np.ndarray):
        shape_ok = image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))
        if image.dtype != np.uint8 or not shape_ok:
            raise ValueError(
                f"an image array must be uint8 HxW or HxWxC (C = 1, 3 or 4), got "
                f"{image.dtype} {image.shape}; convert it (np.clip(x, 0, 255).astype(np.uint8))"
            )
        return None, image, image.nbytes
    if isinstance(image, str | os.PathLike):
        path = os.path.join(root, os.fspath(image))
        try:
            size = os.stat(path).st_size
        except OSError:
            size = 0  # rejected by the worker that reads it, with the reason
        return os.fspath(image), None, size
    raise TypeError(
        f"image must be encoded bytes, a uint8 array or a path, not {type(image).__name__}"
    )
