"""Class names index a dataset as class ids do (``ds.class_index("cat")``); an unknown name
lists the close ones; ``ds["cat"]`` says what to use instead of failing to parse an int."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from builders import DatasetFactory, Drawing

import datumio
from datumio.errors import UnknownClassError


def test_a_name_gives_the_ids_its_class_id_gives(pets: Path) -> None:
    with datumio.open(pets) as ds:
        assert ds.class_names == ["Bird", "cat", "dog"]
        for c, name in enumerate(ds.class_names):
            np.testing.assert_array_equal(ds.class_index(name), ds.class_index(c))
            assert ds.class_number(name) == c
            assert {ds[int(i)][1] for i in ds.class_index(name)} == {c}
        assert len(ds.class_index("cat")) == 3
        np.testing.assert_array_equal(ds.class_index(np.int64(2)), ds.class_index("dog"))
        reopened = pickle.loads(pickle.dumps(ds))  # a worker's copy looks names up too
        np.testing.assert_array_equal(reopened.class_index("dog"), ds.class_index("dog"))


@pytest.mark.parametrize(
    ("name", "close"), [("catt", "'cat'"), ("bird", "'Bird'"), ("dgo", "'dog'")]
)
def test_an_unknown_name_lists_the_close_ones(pets: Path, name: str, close: str) -> None:
    with datumio.open(pets) as ds, pytest.raises(KeyError) as raised:
        ds.class_index(name)
    text = str(raised.value)
    assert f"no class named {name!r}" in text and f"the closest: {close}" in text
    assert "3 classes" in text and "class_names" in text
    assert isinstance(raised.value, UnknownClassError)
    assert isinstance(raised.value, datumio.DatumioError)
    assert not text.startswith(("'", '"'))  # the message itself, not KeyError's quoted repr


def test_a_name_with_nothing_close(pets: Path) -> None:
    with datumio.open(pets) as ds, pytest.raises(UnknownClassError) as raised:
        ds.class_index("zebra")
    assert "closest" not in str(raised.value) and "3 classes" in str(raised.value)


def test_a_class_id_out_of_range_stays_an_index_error(pets: Path) -> None:
    with datumio.open(pets) as ds, pytest.raises(IndexError, match="3 classes"):
        ds.class_index(3)


def test_digit_names_are_looked_up_as_names(dataset_factory: DatasetFactory) -> None:
    """Folders ``3`` and ``7``: the text "7" is the class named 7 (id 1), the int 7 an id."""
    path = dataset_factory(Drawing({"3": 1, "7": 1}, size=(6, 8), picture="solid"))
    with datumio.open(path) as ds:
        assert ds.class_names == ["3", "7"]
        np.testing.assert_array_equal(ds.class_index("7"), ds.class_index(1))
        with pytest.raises(IndexError):
            ds.class_index(7)


def test_indexing_by_a_name_says_what_to_use(pets: Path) -> None:
    with datumio.open(pets) as ds:
        with pytest.raises(TypeError, match=r"ds\.class_index\('cat'\)"):
            ds["cat"]  # type: ignore[index]
        with pytest.raises(TypeError, match="not a float"):
            ds[1.5]  # type: ignore[index]
        with pytest.raises(TypeError, match="not a slice"):
            ds[0:2]  # type: ignore[index]
        with pytest.raises(TypeError, match="class_index"):
            ds.shape("cat")  # type: ignore[arg-type]
        image, label = ds[np.int64(0)]  # numpy ints index as ints do
        assert image.ndim == 3 and label == int(ds.labels[0])
        assert ds[-1][1] == int(ds.labels[len(ds) - 1])
