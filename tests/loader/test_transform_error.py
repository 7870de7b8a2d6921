"""A failing ``user_fn`` fails its batch loudly: a TransformError is never "replaced" by
another record of the same class (as an unreadable record is)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from datumio.augment import Transform
from datumio.errors import WorkerError
from datumio.loader import Loader

pytestmark = pytest.mark.timeout(60)


# Top-level, so that they pickle to the workers by reference.
def reject_everything(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    raise ValueError("user_fn refuses this image")


def return_a_strip(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return image[:1]


@pytest.mark.parametrize(
    ("user_fn", "says"),
    [
        (reject_everything, "ValueError: user_fn refuses this image"),
        (return_a_strip, "returned (1, 16, 3)"),
    ],
)
def test_failing_user_fn_fails_the_batch_without_replacing_records(
    small_lmdb: Path, user_fn: object, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="datumio")
    spec = Transform(size=(16, 16), user_fn=user_fn)  # type: ignore[arg-type]
    with Loader(small_lmdb, 3, transform=spec, workers=2, sampling="natural") as loader:
        with pytest.raises(WorkerError) as info:
            for _ in loader:
                pass
        assert loader.stats.replaced == 0 and not loader.stats.replaced_ids
    text = str(info.value)
    assert "TransformError" in text and says in text
    assert user_fn.__name__ in text  # type: ignore[attr-defined]
    assert info.value.record >= 0 and f"record {info.value.record} (shard " in text
    assert not [r for r in caplog.records if "using record" in r.getMessage()]
