"""The shard plan: which input files go to which shard, a pure function of listing + options.

Shards are consecutive slices of the (optionally shuffled) item list, so the dataset's
layout does not depend on ``--workers`` or the executor:

* ``shard_records=N``: N input files per shard (fewer records where files are rejected);
* ``shard_bytes=B``: files are added until their input sizes reach B, and a shard also
  closes at ``max(MIN_CAP_FILES, ceil(n / TARGET_SHARDS))`` files, so that even a small
  input splits into enough shards to decode in parallel. The sizes are those of the input
  files: a re-encoded shard's stored size differs (smaller after a downscale, larger for
  ``raw``).

The plan's fingerprint (options that change the records, class names, every item and
the slices) names it in ``plan.json``; ``--resume`` only adopts a temporary directory
whose plan has the same fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from datumio.ingest.disk import writing
from datumio.ingest.options import IngestOptions, recorded_options
from datumio.ingest.sources import Item

PLAN_FILE = "plan.json"
PLAN_VERSION = 1
#: A byte-sized plan splits the input into at least about this many shards ...
TARGET_SHARDS = 32
#: ... unless that would make shards smaller than this many files.
MIN_CAP_FILES = 64
#: Options that decide what the records are (the run's other options do not).
CONTENT_OPTIONS = (
    "encode",
    "quality",
    "max_side",
    "short_side",
    "size",
    "gray",
    "background",
    "min_side",
    "max_pixels",
    "shard_bytes",
    "shard_records",
    "shuffle",
    "seed",
    "labels_file",
    "class_names",
    "fields",
    "importer",
    "columns",
    "splits",
)


@dataclass(frozen=True)
class Plan:
    """Shard s holds items ``slices[s][0]:slices[s][1]`` and is numbered ``first_shard + s``."""

    slices: list[tuple[int, int]]
    first_shard: int
    fingerprint: str
    #: The identity a new dataset gets (``Manifest.dataset_id``): random, so two ingests
    #: of the same input are two datasets; kept in ``plan.json`` for ``--resume``.
    dataset_id: str = field(default_factory=lambda: secrets.token_hex(16))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "version": PLAN_VERSION}


def _file_sizes(root: str, items: list[Item]) -> list[int]:
    def size(item: Item) -> int:
        try:
            return os.stat(os.path.join(root, item.rel)).st_size
        except OSError:
            return 0  # rejected later, by the task that reads it

    # stat() releases the GIL: threads hide the latency of a network filesystem. One task per
    # block of items (ThreadPoolExecutor.map ignores chunksize: a future per item costs more
    # than a local stat).
    blocks = [items[i : i + 1024] for i in range(0, len(items), 1024)]
    if len(blocks) <= 1:
        return [size(item) for item in items]
    with ThreadPoolExecutor(min(16, len(blocks))) as pool:
        parts = pool.map(lambda block: [size(item) for item in block], blocks)
        return [n for part in parts for n in part]


def slices_for(
    n: int, shard_records: int, shard_bytes: int, sizes: list[int] | None
) -> list[tuple[int, int]]:
    """Consecutive (start, stop) slices of ``n`` items by the rule in the module docstring."""
    if shard_records > 0:
        return [(a, min(n, a + shard_records)) for a in range(0, n, shard_records)]
    cap = max(MIN_CAP_FILES, math.ceil(n / TARGET_SHARDS))
    out: list[tuple[int, int]] = []
    start, total = 0, 0
    for i in range(n):
        total += sizes[i] if sizes is not None else 0
        if i + 1 - start >= cap or total >= shard_bytes:
            out.append((start, i + 1))
            start, total = i + 1, 0
    if start < n:
        out.append((start, n))
    return out


def make_plan(
    src: str,
    items: list[Item],
    class_names: list[str],
    options: IngestOptions,
    backend: str,
    first_shard: int = 0,
    images: bool = True,
) -> Plan:
    """The shard plan of ``items`` and its fingerprint (``images`` False: the items are
    table rows, no files: a byte-sized plan counts rows only)."""
    sizes = _file_sizes(src, items) if options.shard_records == 0 and images else None
    slices = slices_for(len(items), options.shard_records, options.shard_bytes, sizes)
    digest = hashlib.sha256()
    recorded = recorded_options(options)  # size as (width, height), as plans always had it
    head = {
        "src": src,
        "backend": backend,
        "encoding": options.encoding,
        "options": {k: recorded[k] for k in CONTENT_OPTIONS},
        "class_names": class_names,
        "first_shard": first_shard,
        "slices": slices,
    }
    digest.update(json.dumps(head, sort_keys=True, default=list).encode())
    for item in items:
        split = "" if item.split is None else f"\0{item.split}"
        line = f"{item.rel}\0{item.label}\0{item.group}{split}\n"
        digest.update(line.encode("utf-8", "surrogateescape"))
        if item.fields is not None:
            digest.update(json.dumps(item.fields, sort_keys=True, default=_json_value).encode())
    if sizes is not None:
        digest.update(repr(sizes).encode())
    return Plan(slices, first_shard, digest.hexdigest())


def _json_value(value: Any) -> Any:
    """Field values JSON does not know (arrays, bytes, a mask's recipe), for the fingerprint."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if callable(getattr(value, "to_json", None)):  # a MaskRecipe (ingest/samples.py)
        return value.to_json()
    return value.tolist()


def write_plan(tmp: str, plan: Plan) -> None:
    path = os.path.join(tmp, PLAN_FILE)
    with writing(path), open(path, "w", encoding="utf-8") as fh:
        json.dump(plan.to_dict(), fh)


def read_fingerprint(tmp: str) -> str | None:
    """The fingerprint in ``tmp/plan.json``, or None when there is no readable plan."""
    return _plan_text(tmp, "fingerprint")


def read_dataset_id(tmp: str) -> str | None:
    """The dataset identity in ``tmp/plan.json`` (None: no readable plan, or one written
    before identities existed)."""
    return _plan_text(tmp, "dataset_id")


def _plan_text(tmp: str, key: str) -> str | None:
    try:
        with open(os.path.join(tmp, PLAN_FILE), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != PLAN_VERSION:
        return None
    value = data.get(key)
    return value if isinstance(value, str) else None
