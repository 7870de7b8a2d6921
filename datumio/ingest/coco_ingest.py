"""``from_coco(images, annotations, out)``: ingest an image folder and its COCO JSON.

A module of its own, above :mod:`datumio.ingest.run`: the listing
(:mod:`datumio.ingest.coco`) sits below the ingest flow, which calls it.
"""

from __future__ import annotations

import os
from typing import Any, Unpack

from datumio.checks import on_top
from datumio.ingest.options import IngestKeywords, IngestOptions
from datumio.ingest.report import IngestReport
from datumio.ingest.run import ingest


def from_coco(
    images: str | os.PathLike[str],
    annotations: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: IngestOptions | None = None,
    **keywords: Unpack[IngestKeywords],
) -> IngestReport:
    """Ingest the images a COCO JSON lists (instances or person keypoints), with their
    annotations as fields: ``image_id``, ``boxes``, ``iscrowd``, ``annotation_ids``, and
    ``keypoints``, ``mask`` and ``instances`` when the JSON has them (``docs/ingest.md``,
    "COCO").

    ``datumio.ingest(images, out, importer="coco", labels_file=annotations, ...)`` does
    the same and also takes ``executor=``, ``progress=``, ``events=`` and ``stop=``.

    Args:
        images: the folder the JSON's ``file_name`` paths are relative to.
        annotations: the COCO JSON (``instances_train2017.json`` ...).
        out: the dataset directory to create (``.lmdb`` / ``.h5`` picks the backend), or a
            URL, as for :func:`datumio.ingest`.
        options: see :class:`IngestOptions`.
        keywords: any other :class:`IngestOptions` field on top of ``options``.

    Returns:
        The report of the run.

    Raises:
        IngestError: a file that is not a COCO JSON (the message says what is expected), an
            option the JSON decides (``class_names``, ``fields``); the errors of any ingest.
        TypeError: a keyword that is not an option (with the closest name).
    """
    fields: dict[str, Any] = {
        **keywords,
        "importer": "coco",
        "labels_file": os.fspath(annotations),
    }
    return ingest(images, out, on_top(IngestOptions, options, fields, "from_coco"))
