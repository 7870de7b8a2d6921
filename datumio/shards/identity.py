"""Which dataset a reader holds: a replaced dataset is refused, an appended one is not.

A dataset's ``manifest.json`` names its identity (``dataset_id``, random, chosen when a new
dataset is written and kept by ``--append``) and its version (``generation``, +1 per
append); every shard's info names the identity of the dataset it was written for. A reader
(a :class:`~datumio.shards.dataset.Dataset`, and the copies of it that the loader's worker
processes unpickle) keeps the manifest it opened; here it checks that what it finds at its
path later is still that dataset:

* the same identity at the same or a later generation: an append, which never changes or
  removes a record, a shard or an index file of an earlier generation; the reader goes on
  with its own version;
* anything else (another identity, an earlier generation, no manifest): the path was
  replaced. :class:`~datumio.errors.DatasetReplacedError` says so; the reader never opens
  a file of the other dataset, so it never mixes the two.

Datasets written before identities existed have none; for them an append is recognised by
its manifest listing every shard the reader's listed, with the same records.
"""

from __future__ import annotations

from typing import Protocol

from datumio.errors import DatasetReplacedError, DatumioError
from datumio.shards.base import ShardReader
from datumio.shards.manifest import Manifest

#: Where a replaced dataset's message sends the user.
_REOPEN = (
    "the reader keeps the shards it has open but reads nothing of the new dataset; open "
    "the path again (a new datumio.open or Loader) to read what is there now"
)


class _Reader(Protocol):
    path: str
    manifest: Manifest

    def shard_path(self, shard: int) -> str: ...


def _describe(m: Manifest) -> str:
    ident = f"dataset {m.dataset_id}" if m.dataset_id else "a dataset without identity"
    return f"{ident} (generation {m.generation}, {m.num_records} records)"


def same_dataset(opened: Manifest, current: Manifest) -> bool:
    """Whether ``current`` is ``opened`` or a later append to it (see the module doc)."""
    if current.generation < opened.generation:
        return False
    if opened.dataset_id is not None:
        return current.dataset_id == opened.dataset_id
    n = len(opened.shards)
    return current.class_names[: len(opened.class_names)] == opened.class_names and [
        (s.file, s.records_crc32) for s in current.shards[:n]
    ] == [(s.file, s.records_crc32) for s in opened.shards]


def check_same_dataset(path: str, opened: Manifest, current: Manifest) -> None:
    """Raise unless the dataset at ``path`` (its manifest now: ``current``) is still the
    one whose manifest ``opened`` a reader holds.

    Raises:
        DatasetReplacedError: names both datasets and what to do.
    """
    if not same_dataset(opened, current):
        raise DatasetReplacedError(
            f"{path} was replaced after it was opened: the reader opened {_describe(opened)}, "
            f"the path now holds {_describe(current)}; {_REOPEN}"
        )


def check_shard_identity(reader: _Reader, shard: int, shard_reader: ShardReader) -> None:
    """Raise unless the shard just opened belongs to the dataset ``reader`` opened (a shard
    without an identity, written before they existed, passes: its records are checked
    against the manifest on first read).

    Raises:
        DatasetReplacedError: the shard names another dataset.
    """
    expected = reader.manifest.dataset_id
    if expected is None:
        return
    try:
        found = shard_reader.info().get("dataset_id")
    except DatumioError:
        return  # a damaged info: the record checks name the damage
    if found is not None and found != expected:
        raise DatasetReplacedError(
            f"shard {reader.shard_path(shard)} belongs to dataset {found}, but this reader "
            f"opened {_describe(reader.manifest)} at {reader.path}: the dataset was replaced "
            f"after it was opened (or the shard copied in from another dataset: run datumio "
            f"verify); {_REOPEN}"
        )
