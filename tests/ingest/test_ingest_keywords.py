"""``ingest(src, out, options, **keywords)``: any IngestOptions field as a keyword on top
of ``options``, a misspelt one refused with the name meant before anything is written, and
every bad value refused naming the field and the value."""

from __future__ import annotations

from pathlib import Path

import pytest
from image_helpers import draw_image

import datumio
from datumio import IngestOptions, OptionError


def _src(root: Path) -> Path:
    for k in range(6):
        draw_image(root / ("a" if k % 2 else "b") / f"{k}.png", size=(24, 16), colour=(k, 0, 0))
    return root


def test_keywords_go_on_top_of_the_options(tmp_path: Path) -> None:
    src, out = _src(tmp_path / "src"), tmp_path / "out.h5"
    base = IngestOptions(shuffle=True, seed=1, encode="png", workers=1)
    report = datumio.ingest(src, out, base, seed=5, size=(8, 8), executor="local")
    recorded = report.manifest.ingest.options
    assert (recorded["shuffle"], recorded["seed"], recorded["size"]) == (True, 5, [8, 8])
    assert recorded["encode"] == "png" and recorded["executor"] == "local"
    with datumio.open(out) as ds:  # keywords alone, no options object, give the defaults
        assert ds.backend == "hdf5" and ds[0][0].shape == (8, 8, 3)
    again = datumio.ingest(src, tmp_path / "again.lmdb", workers=1)
    assert again.manifest.ingest.options["seed"] == 0


def test_a_misspelt_keyword_names_the_one_meant_and_writes_nothing(tmp_path: Path) -> None:
    src, out = _src(tmp_path / "src"), tmp_path / "out.lmdb"
    with pytest.raises(TypeError, match=r"'workerz' \(did you mean 'workers'\?\)"):
        datumio.ingest(src, out, workerz=2)  # type: ignore[call-arg]
    assert not out.exists()


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("format", "zip", "format='zip'; give one of 'lmdb', 'hdf5'"),
        ("encode", "gif", "encode='gif'; give one of 'auto', 'keep', 'jpeg'"),
        ("quality", 0, "quality=0; give an int from 1 to 100"),
        ("max_side", 0, "max_side=0; give a positive number of pixels"),
        ("size", (8, 0), "size[1]=0; give a positive number of pixels"),
        ("gray", "yes", "gray='yes'; give True or False"),
        ("background", (0, 0), "background=(0, 0); give three values in 0..255"),
        ("background", (0, 0, 256), "background[2]=256; give an int from 0 to 255"),
        ("min_side", 0, "min_side=0; give a positive number of pixels"),
        ("shard_records", -1, "shard_records=-1; give an int >= 0"),
        ("seed", -1, "seed=-1; give an int >= 0"),
        ("workers", 0, "workers=0; give 1 or more (default: all cores)"),
        ("class_names", "cat,dog", "class_names='cat,dog'; give a list or tuple"),
        ("on_error", "ignore", "on_error='ignore'; give one of 'skip', 'raise'"),
        ("max_errors", -1, "max_errors=-1; give an int >= 0"),
        ("executor", "ray", "executor='ray'; give local, dask or dask=tcp://HOST:PORT"),
        ("executor", "dask=", "executor='dask='; give local, dask or dask=tcp://HOST:PORT"),
        ("wait", -1, "wait=-1; give the seconds to wait for another run writing OUT"),
        ("resume", 1, "resume=1; give True or False"),
    ],
)
def test_a_bad_ingest_option_is_refused_with_the_field_and_the_value(
    field: str, value: object, says: str
) -> None:
    with pytest.raises(OptionError) as info:
        IngestOptions(**{field: value})  # type: ignore[arg-type]
    assert says in str(info.value)


def test_ingest_values_come_back_in_one_type(tmp_path: Path) -> None:
    options = IngestOptions(
        size=[16, 8],  # type: ignore[arg-type]
        class_names=["cat", "dog"],  # type: ignore[arg-type]
        labels_file=tmp_path / "labels.csv",  # type: ignore[arg-type]
        wait=float("inf"),
    )
    assert options.size == (16, 8) and options.class_names == ("cat", "dog")
    assert options.labels_file == str(tmp_path / "labels.csv") and options.wait is None
