"""``docs/format.md`` promises of the index and the version, checked on real datasets.

* ``index/class_ids.npy`` lists the record ids grouped by class, ascending within a class,
  also when the records are stored shuffled (``--shuffle``).
* A reader refuses any version newer than the newest it knows, the very next one included.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from builders import DatasetFactory, Drawing

import datumio
from datumio.shards import format as fmt
from datumio.shards.verify import verify


@pytest.fixture
def shuffled(dataset_factory: DatasetFactory) -> Path:
    drawing = Drawing({"a": 5, "b": 5, "c": 5}, size=(6, 8), picture="solid")
    return dataset_factory(drawing, shuffle=True, seed=5)


def test_class_ids_group_the_records_of_each_class(shuffled: Path) -> None:
    ds = datumio.open(str(shuffled))
    try:
        labels = np.asarray(ds.labels)
        assert np.any(np.diff(labels) < 0)  # stored out of class order
        for c in range(ds.num_classes):
            assert ds.class_index(c).tolist() == np.flatnonzero(labels == c).tolist()
    finally:
        ds.close()
    assert verify(str(shuffled)).ok


def test_the_next_format_version_is_refused(shuffled: Path) -> None:
    manifest = json.loads((shuffled / fmt.MANIFEST).read_text())
    manifest["format_version"] = fmt.FORMAT_VERSION + 1
    (shuffled / fmt.MANIFEST).write_text(json.dumps(manifest))
    newer = f"version {fmt.FORMAT_VERSION + 1}.*up to {fmt.FORMAT_VERSION}"
    with pytest.raises(datumio.FormatVersionError, match=newer):
        datumio.open(str(shuffled))
