"""``datumio.open(path, **keywords)``: the Dataset's keywords for a directory, the cache's
for a URL too; a misspelt keyword, or a URL's keyword with a directory, is refused saying
what to give."""

from __future__ import annotations

from pathlib import Path

import pytest

import datumio


def test_a_directory_takes_the_datasets_keywords(tiny_lmdb: Path) -> None:
    with datumio.open(tiny_lmdb, max_open_shards=2, verify_crc=False) as ds:
        assert (ds.max_open_shards, ds.verify_crc) == (2, False)


def test_a_misspelt_keyword_names_the_one_meant(tiny_lmdb: Path) -> None:
    with pytest.raises(TypeError, match=r"'max_open_shard' \(did you mean 'max_open_shards'\?\)"):
        datumio.open(tiny_lmdb, max_open_shard=3)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "keywords",
    [{"cache_dir": "cache"}, {"cache_limit": 2**20, "storage_options": {}}],
    ids=["cache_dir", "cache_limit+storage_options"],
)
def test_a_urls_keyword_with_a_directory_is_refused(tiny_lmdb: Path, keywords: dict) -> None:
    with pytest.raises(TypeError) as info:
        datumio.open(tiny_lmdb, **keywords)
    text = str(info.value)
    assert all(name in text for name in keywords), text
    assert "a local directory" in text and "apply to a dataset at a URL only" in text
