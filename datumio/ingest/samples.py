"""Records given one by one: a :class:`Sample` from code or an importer, and a :class:`Source`.

:class:`datumio.Writer` takes samples from the caller's code; an importer (a Hugging Face
dataset, WebDataset tar shards) is a :class:`Source`: a deterministic stream of samples
and what is known of them up front (class names, field types, a fingerprint for
``resume``). Both are written by one engine (:mod:`datumio.ingest.stream`), which shares
the folder ingest's workers, shard tasks, rejects, index and atomic publish.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from datumio.ingest.sources import Reject

#: What an image can be: encoded bytes (kept as they are with ``encode="keep"``), an
#: array (HxW or HxWxC uint8, C in 1, 3, 4) or the path of an image file.
ImageInput = bytes | bytearray | memoryview | np.ndarray | str | os.PathLike[str]


class MaskRecipe(Protocol):
    """A mask given as what draws it (a COCO polygon or RLE), drawn in the ingest worker."""

    def render(self, width: int, height: int) -> np.ndarray:
        """The label image (height, width) uint8 for an image of that upright size."""
        ...

    def to_json(self) -> Any:
        """What names the mask in a plan's fingerprint (JSON-serialisable)."""
        ...


@dataclass(frozen=True, slots=True)
class Sample:
    """One record to be: its image, label, group, fields and split.

    Args:
        image: see :data:`ImageInput`; None only for a dataset without images.
        label: a class id (int) or a class name (str).
        group: a group id or name (patient, video, source), or None.
        fields: field values by name, as a labels file's JSON columns give them (lists,
            numbers, text; numpy arrays too; a mask as a label image array, a path or a
            :class:`MaskRecipe`). Boxes are ``[x0, y0, x1, y1(, class)]`` in source pixels.
        name: shown in rejects and stored as the record's source (default: its number).
        split: the stored split the record belongs to (``"train"``, ``"val"`` ...), or None.
    """

    image: ImageInput | None
    label: int | str
    group: int | str | None = None
    fields: Mapping[str, Any] | None = None
    name: str | None = None
    split: str | None = None


@dataclass(frozen=True)
class Source:
    """A stream of samples and what is known of them before the first one.

    ``samples()`` is called once per run and must give the same samples in the same order
    on every call with the same input (``resume`` reuses the shards of a dead run by
    position). It may yield a :class:`Reject` for an input row that cannot become a
    sample (a missing image column, an undecodable label); rejects follow the run's
    ``on_error``/``max_errors``.
    """

    #: What the input is (``"huggingface"``, ``"webdataset"``): the manifest's
    #: ``ingest.input``.
    kind: str
    #: The input as shown to people (the manifest's ``ingest.source``).
    where: str
    samples: Callable[[], Iterator[Sample | Reject]]
    #: The fixed class list (a ``ClassLabel``'s names): str labels must be among them and
    #: int labels index them. None: class names by first appearance (sorted when the
    #: labels are ints: ``"0"``, ``"1"`` ...).
    class_names: Sequence[str] | None = None
    #: Field declarations (name -> type, as ``--field NAME:TYPE``); undeclared fields are
    #: inferred from the first shard's samples.
    fields: Mapping[str, str] = field(default_factory=dict)
    #: Identifies the input for ``resume`` (files, sizes, modification times, the
    #: importer's choices); "" refuses nothing.
    fingerprint: str = ""
    #: The number of samples when known (a progress bar's total).
    total: int | None = None
    #: What relative image (and mask) paths are relative to; "": the working directory.
    root: str = ""
