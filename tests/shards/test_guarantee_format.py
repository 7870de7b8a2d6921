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
from image_helpers import draw_image

import datumio
from datumio.shards import format as fmt
from datumio.shards.verify import verify


@pytest.fixture
def shuffled(tmp_path: Path) -> Path:
    for k in range(15):
        draw_image(tmp_path / "src" / "abc"[k % 3] / f"{k:02d}.png", colour=(k, 0, 0))
    out = tmp_path / "out.lmdb"
    options = datumio.IngestOptions(shuffle=True, seed=5, workers=1)
    datumio.ingest(str(tmp_path / "src"), str(out), options)
    return out


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
