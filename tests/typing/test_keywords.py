"""The typed keywords restate the option dataclasses' fields (names and types, never the
defaults): these tests keep the two from drifting apart, and the runtime tuples of choices
equal to their ``Literal`` types."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, get_args, get_type_hints

from datumio import IngestOptions, LoaderOptions, SamplerOptions, codec, ingest
from datumio.ingest import IngestKeywords
from datumio.ingest.options import ENCODES, FORMATS
from datumio.loader import LoaderKeywords
from datumio.loader.options import SAMPLER_KEYWORDS
from datumio.remote import OpenKeywords
from datumio.remote.store import open_remote
from datumio.sampling import SamplerKeywords
from datumio.shards import Dataset
from datumio.shards import format as fmt


def fields(cls: type) -> dict[str, Any]:
    """The dataclass ``cls``'s fields and their types."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def keyword_only(function: Any, *leave_out: str) -> dict[str, Any]:
    """The keyword-only parameters of ``function`` and their types."""
    hints = get_type_hints(function)
    return {
        name: hints[name]
        for name, p in inspect.signature(function).parameters.items()
        if p.kind is p.KEYWORD_ONLY and name not in leave_out
    }


def test_sampler_keywords_are_the_sampler_options() -> None:
    assert get_type_hints(SamplerKeywords) == fields(SamplerOptions)


def test_loader_keywords_are_its_options_and_the_sampler_keywords() -> None:
    sampler = fields(SamplerOptions)
    sampler["sampling"] = sampler.pop("mode")  # a Loader names the sampler's mode so
    mine = fields(LoaderOptions)
    del mine["batch_size"]  # Loader's second parameter
    expected = mine | {name: sampler[name] for name in SAMPLER_KEYWORDS}
    assert get_type_hints(LoaderKeywords) == expected
    assert list(LoaderKeywords.__annotations__) == list(expected)  # and in that order


def test_ingest_keywords_are_the_ingest_options_but_executor() -> None:
    expected = fields(IngestOptions)
    executor = expected.pop("executor")  # ingest's own executor= takes its name too
    assert get_type_hints(IngestKeywords) == expected
    assert executor in get_args(get_type_hints(ingest)["executor"])


def test_open_keywords_are_the_datasets_and_the_remote_caches() -> None:
    expected = keyword_only(Dataset.__init__, "store") | keyword_only(open_remote)
    assert get_type_hints(OpenKeywords) == expected


def test_the_choices_of_ingest_are_those_the_format_and_the_codec_list() -> None:
    # shards.format and the codec keep their own tuples (the manifest checks read them);
    # ingest's Literal types, the ones type checkers read, must name the same choices.
    assert FORMATS == fmt.BACKENDS
    assert ("auto", *codec.ENCODINGS) == ENCODES
    assert get_args(codec.Encoding) == codec.ENCODINGS
