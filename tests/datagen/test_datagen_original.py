"""The original datumio API, to the letter: its own test expectations, in Python 3.

The original (``longubu/datumio``, Python 2) tested its generators in
``tests/test_generators.py``: batches are X and y in order, a shuffled pass with
``rng_seed=16`` follows ``RandomState(16).shuffle(range(len(X)))``, batches without y are X
only, ``resample_dataset`` replaces ``y`` with the resampled labels in the weights'
proportions, and the dataset, batch and sample zmuv match the numpy formulas (the
``DataGenerator`` one with ``dataset_zmuv_bsize=500``). Those expectations are here, with the
shuffle order also computed from the original's algorithm independently of numpy's
``shuffle`` (Mersenne Twister words, Fisher-Yates with masked rejection, as numpy's
``rk_interval`` of those days), every argument of the original's constructors and methods,
and the errors for images that do not fit together.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datumio import transforms
from datumio.datagen import BatchGenerator, DataGenerator, img_loader
from datumio.errors import DatumioError, OptionError, WorkerError

BATCH = 8
N = 50


def _mt19937_words(seed: int) -> Iterator[int]:
    """The 32-bit words of MT19937 seeded by ``init_genrand(seed)``: ``RandomState(seed)``'s
    stream, produced by Python's own Mersenne Twister from that state."""
    state = [seed & 0xFFFFFFFF]
    for i in range(1, 624):
        prev = state[-1]
        state.append((1812433253 * (prev ^ (prev >> 30)) + i) & 0xFFFFFFFF)
    twister = random.Random()
    twister.setstate((3, (*state, 624), None))
    while True:
        yield twister.getrandbits(32)


def original_shuffle(n: int, seed: int) -> list[int]:
    """``idxs = range(n); RandomState(seed).shuffle(idxs)`` as Python 2's numpy ran it."""
    words = _mt19937_words(seed)
    idxs = list(range(n))
    for i in reversed(range(1, n)):
        mask = (1 << i.bit_length()) - 1  # the smallest 2**k - 1 >= i
        j = next(words) & mask
        while j > i:
            j = next(words) & mask
        idxs[i], idxs[j] = idxs[j], idxs[i]
    return idxs


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.integers(0, 256, (N, 12, 12, 3), dtype=np.uint8)
    y = np.arange(N) % 10
    return X, y


@pytest.fixture(scope="module")
def paths(
    data: tuple[np.ndarray, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> list[str]:
    root = tmp_path_factory.mktemp("original-api")
    out = []
    for i, x in enumerate(data[0]):
        path = root / f"{i:03d}.png"
        Image.fromarray(x).save(path)
        out.append(str(path))
    return out


def _generators(data, paths) -> dict[str, tuple[type, object]]:
    return {"batch": (BatchGenerator, data[0]), "data": (DataGenerator, paths)}


@pytest.mark.parametrize("kind", ["batch", "data"])
@pytest.mark.parametrize(
    ("seed", "batch_size"), [(16, BATCH), (0, 7), (12345, 50), (2**32 - 1, 64)]
)
@pytest.mark.parametrize("workers", [0, 2])
def test_a_shuffled_pass_has_the_original_order(data, paths, kind, seed, batch_size, workers):
    X, y = data
    gen_class, source = _generators(data, paths)[kind]
    assert original_shuffle(N, 16)[:BATCH] == [3, 34, 25, 36, 20, 23, 35, 21]  # pinned
    idxs = original_shuffle(N, seed)
    reference = list(range(N))
    np.random.RandomState(seed).shuffle(reference)  # the original test's own expectation
    assert idxs == reference
    batches = list(
        gen_class(source, y=np.arange(N)).get_batch(
            batch_size=batch_size, shuffle=True, rng_seed=seed, dtype=np.uint8, workers=workers
        )
    )
    sizes = [batch_size] * (N // batch_size) + ([N % batch_size] if N % batch_size else [])
    assert [len(by) for _, by in batches] == sizes  # the last batch is the remainder
    for b, (mb_x, mb_y) in enumerate(batches):
        assert mb_y.tolist() == idxs[b * batch_size : (b + 1) * batch_size]
        assert np.array_equal(mb_x, X[idxs][b * batch_size : (b + 1) * batch_size])
    labelled = next(iter(gen_class(source, y).get_batch(BATCH, True, seed, workers=workers)))
    assert np.array_equal(labelled[1], y[idxs][:BATCH])


def test_rng_seed_none_shuffles_with_numpys_global_state(data):
    X, _ = data
    gen = BatchGenerator(X, np.arange(N), rng_aug_params={"rotation_range": (-30, 30)})
    saved = np.random.get_state()
    try:
        np.random.seed(5)
        first = list(gen.get_batch(batch_size=BATCH, shuffle=True, workers=0))
        np.random.seed(5)
        idxs = list(range(N))
        np.random.shuffle(idxs)  # the original's rng_seed=None: the global state
        np.random.seed(5)
        again = list(gen.get_batch(batch_size=BATCH, shuffle=True, workers=0))
        other = list(gen.get_batch(batch_size=BATCH, shuffle=True, workers=0))
    finally:
        np.random.set_state(saved)
    assert np.concatenate([by for _, by in first]).tolist() == idxs
    # The augmentation's seed comes from the global state too: a seeded run repeats.
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(first, again, strict=True))
    assert not np.array_equal(first[0][0], other[0][0])


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "16"])
def test_a_seed_randomstate_refuses_is_an_option_error(data, seed):
    with pytest.raises(OptionError, match=r"rng_seed=.*RandomState seed"):
        BatchGenerator(data[0]).get_batch(shuffle=True, rng_seed=seed)


CLASS_WEIGHTS = {
    0: 0.25,
    1: 0.0,
    2: 0.0,
    3: 0.15,
    4: 0.10,
    5: 0.25,
    6: 0.0,
    7: 0.0,
    8: 0.15,
    9: 0.10,
}


@pytest.mark.parametrize("kind", ["batch", "data"])
def test_resample_dataset_replaces_x_and_y_with_the_selection(data, paths, kind):
    X, y = data
    gen_class, source = _generators(data, paths)[kind]
    gen = gen_class(source, y)
    idxs = gen.resample_dataset(y, CLASS_WEIGHTS, sample_fraction=1.0, rng_seed=4)
    # The original's checks: y changed, and its histogram follows the weights.
    assert not np.array_equal(gen.y, y)
    hist = np.bincount(gen.y, minlength=10) / len(gen.y)
    assert np.mean(np.abs(np.array(list(CLASS_WEIGHTS.values())) - hist)) <= 0.01 * 10
    # Exact quotas: 50 records in proportions 25/15/10 %, largest remainders (a tie goes to
    # the lower label).
    assert np.bincount(gen.y, minlength=10).tolist() == [13, 0, 0, 8, 5, 12, 0, 0, 7, 5]
    assert np.array_equal(gen.y, y[idxs]) and len(gen.X) == len(idxs) == N
    expected_x = X[idxs] if kind == "batch" else np.array(paths)[idxs]
    assert np.array_equal(gen.X, expected_x)
    # Passes go over the selection, shuffled as the original shuffled the resampled X.
    order = original_shuffle(N, 16)
    batches = list(gen.get_batch(BATCH, shuffle=True, rng_seed=16, dtype=np.uint8, workers=0))
    assert np.array_equal(np.concatenate([by for _, by in batches]), y[idxs][order])
    assert np.array_equal(np.concatenate([bx for bx, _ in batches]), X[idxs][order])
    # Another call selects from the records given at construction, with the original count.
    again = gen.resample_dataset(y, "balanced", sample_fraction=0.35, rng_seed=1)
    assert len(gen.X) == len(gen.y) == len(again) == int(0.35 * N) == 17
    assert np.array_equal(gen.y, y[again])
    assert np.bincount(gen.y).tolist() == [2, 2, 2, 2, 2, 2, 2, 1, 1, 1]
    natural = gen.resample_dataset(y, None, rng_seed=2)  # scikit-learn's None: all alike
    assert np.bincount(y[natural]).tolist() == [5] * 10


def _dataset_zmuv(X: np.ndarray, axis) -> np.ndarray:
    """The original test's manual formula, on the first batch."""
    tmp = np.array(X, dtype=np.float32)
    mean = tmp.mean(axis=axis)
    std = (tmp - mean).std(axis=axis)
    return (tmp[:BATCH] - mean) / std


@pytest.mark.parametrize("axis", [None, 0])
def test_data_generator_zmuv_matches_the_original_tests_formulas(data, paths, axis):
    """The original test's DataGenerator branch, with dataset_zmuv_bsize=500."""
    X, y = data
    gen = DataGenerator(paths, y=y, dataset_zmuv=True, dataset_axis=axis, dataset_zmuv_bsize=500)
    mb_x, _ = next(iter(gen.get_batch(BATCH, False, chw_order=False, dtype=np.float32)))
    np.testing.assert_allclose(mb_x, _dataset_zmuv(X, axis), rtol=1e-5, atol=1e-5)
    x = X[:BATCH].astype(np.float32)
    gen = DataGenerator(paths, y=y, batch_zmuv=True, batch_axis=axis)
    mb_x, _ = next(iter(gen.get_batch(BATCH, False, dtype=np.float32)))
    manual = (x - x.mean(axis=axis)) / (x.std(axis=axis) + 1e-12)
    np.testing.assert_allclose(mb_x, manual, rtol=1e-5, atol=1e-5)
    gen = DataGenerator(paths, y=y, sample_zmuv=True, sample_axis=axis)
    mb_x, _ = next(iter(gen.get_batch(BATCH, False, dtype=np.float32)))
    manual = np.array([(e - e.mean(axis=axis)) / (e.std(axis=axis) + 1e-12) for e in x])
    np.testing.assert_allclose(mb_x, manual, rtol=1e-5, atol=1e-5)


# Every argument of the original's constructors, methods and transform functions, in its
# order, with its default. REQUIRED: the original had none (nor has this one); ANY: the
# original had none, this one has one (resample_dataset's arr and weights: y, "balanced").
REQUIRED, ANY = inspect.Parameter.empty, object()
ORIGINAL_METHODS = {
    "get_batch": [
        ("batch_size", 32), ("shuffle", False), ("rng_seed", None), ("buffer_size", 2),
        ("dtype", np.float32), ("chw_order", False),
    ],
    "resample_dataset": [
        ("arr", ANY), ("weights", ANY), ("sample_fraction", 1.0), ("rng_seed", None),
    ],
    "compute_dataset_moments": [],
    "standardize": [("x", REQUIRED)],
    "set_actions": [],
}  # fmt: skip
ORIGINAL_SIGNATURES = {
    BatchGenerator: {
        "__init__": [
            ("X", REQUIRED), ("y", None), ("aug_params", None), ("rng_aug_params", None),
            ("dataset_zmuv", False), ("dataset_axis", None), ("batch_zmuv", False),
            ("batch_axis", None), ("sample_zmuv", False), ("sample_axis", None),
        ],
        **ORIGINAL_METHODS,
    },
    DataGenerator: {
        "__init__": [
            ("X", REQUIRED), ("y", None), ("data_loader", img_loader), ("dl_kwargs", None),
            ("aug_params", None), ("rng_aug_params", None), ("dataset_zmuv", False),
            ("dataset_axis", None), ("dataset_zmuv_bsize", 32), ("batch_zmuv", False),
            ("batch_axis", None), ("sample_zmuv", False), ("sample_axis", None),
        ],
        "set_data_loader": [("data_loader", ANY), ("dl_kwargs", ANY)],
        **ORIGINAL_METHODS,
    },
    transforms: {
        "transform_image": [
            ("img", REQUIRED), ("output_shape", None), ("tf", None), ("zoom", (1.0, 1.0)),
            ("rotation", 0.0), ("shear", 0.0), ("translation", (0, 0)), ("flip_lr", False),
            ("flip_ud", False), ("warp_kwargs", None),
        ],
        "perturb_image": [
            ("img", REQUIRED), ("output_shape", None), ("zoom_range", (1.0, 1.0)),
            ("rotation_range", (0.0, 0.0)), ("shear_range", (0.0, 0.0)),
            ("translation_range", (0, 0)), ("do_flip_lr", False), ("do_flip_ud", False),
            ("allow_stretch", False), ("rng", None), ("warp_kwargs", None),
        ],
        "fast_warp": [
            ("img", REQUIRED), ("tf", REQUIRED), ("output_shape", None), ("order", 1),
            ("mode", "constant"), ("cval", 0),
        ],
        "build_augmentation_transform": [
            ("input_shape", REQUIRED), ("output_shape", None), ("zoom", (1.0, 1.0)),
            ("rotation", 0.0), ("shear", 0.0), ("translation", (0, 0)), ("flip_lr", False),
            ("flip_ud", False),
        ],
        "build_random_augmentation_transform": [
            ("input_shape", REQUIRED), ("output_shape", None), ("zoom_range", (1.0, 1.0)),
            ("rotation_range", (0.0, 0.0)), ("shear_range", (0, 0)),
            ("translation_range", (0, 0)), ("do_flip_lr", False), ("do_flip_ud", False),
            ("allow_stretch", False), ("rng", None),
        ],
    },
}  # fmt: skip


@pytest.mark.parametrize(
    "owner", list(ORIGINAL_SIGNATURES), ids=lambda o: getattr(o, "__name__", str(o))
)
def test_every_argument_of_the_original_in_its_place(owner):
    """An original call, positional or by keyword, means the same here: the original's
    parameters come first, in order, with the same defaults; what follows has a default."""
    if owner is not transforms:
        assert hasattr(owner, "input_shape")  # the original's property
    for name, expected in ORIGINAL_SIGNATURES[owner].items():
        params = list(inspect.signature(getattr(owner, name)).parameters.values())
        if owner is not transforms:
            params = params[1:]  # self
        head = params[: len(expected)]
        assert [p.name for p in head] == [arg for arg, _ in expected], name
        assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in head), name
        for p, (arg, default) in zip(head, expected, strict=True):
            if default is REQUIRED:
                assert p.default is REQUIRED, (name, arg)
            elif default is not ANY:
                assert p.default == default, (name, arg)
        assert all(p.default is not REQUIRED for p in params[len(expected) :]), name


@pytest.mark.parametrize("bsize", [1, 7, 32, 500])
def test_every_original_argument_is_accepted_positionally(data, paths, bsize):
    X, y = data
    gen = DataGenerator(
        paths, y, img_loader, None, None, None, True, None, bsize, False, None, False, None
    )
    assert gen.dataset_zmuv_bsize == bsize
    # Exact moments whatever the chunk size: those of the whole array.
    x = X.astype(np.float64)
    np.testing.assert_allclose(gen.mean, x.mean(), rtol=1e-6)
    np.testing.assert_allclose(gen.std, x.std(), rtol=1e-6)
    batch = BatchGenerator(X, y, None, None, True, None, False, None, False, None)
    mb_x, mb_y = next(iter(batch.get_batch(BATCH, False, None, 2, np.float32, False)))
    assert mb_x.shape == (BATCH, 12, 12, 3) and np.array_equal(mb_y, y[:BATCH])
    assert batch.input_shape == X[0].shape and gen.input_shape == X[0].shape
    np.testing.assert_allclose(batch.standardize(X[0]), mb_x[0], rtol=1e-6)
    np.testing.assert_allclose(batch.compute_dataset_moments()[0], gen.mean, rtol=1e-6)
    with pytest.raises(OptionError, match="dataset_zmuv_bsize=0; give a positive int"):
        DataGenerator(paths, dataset_zmuv_bsize=0)


# -- images that do not fit together -------------------------------------------------------


@pytest.fixture
def mixed(tmp_path: Path) -> dict[str, str]:
    """RGB pictures of 16x16, one RGB of 20x18 and one grey of 16x16."""
    rng = np.random.default_rng(8)
    out = {}
    for name, (h, w), mode in [
        ("a", (16, 16), "RGB"),
        ("b", (16, 16), "RGB"),
        ("wide", (20, 18), "RGB"),
        ("grey", (16, 16), "L"),
        ("c", (16, 16), "RGB"),
    ]:
        path = tmp_path / f"{name}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode).save(path)
        out[name] = str(path)
    return out


def test_mixed_sizes_name_output_shape(mixed):
    paths = [mixed[k] for k in ("a", "b", "wide", "c")]
    # The migration example: per-pixel dataset moments over images of two sizes.
    with pytest.raises(OptionError) as info:
        DataGenerator(paths, np.arange(4), dataset_zmuv=True, dataset_axis=0)
    text = str(info.value)
    assert "dataset_axis=0" in text and "output_shape" in text, text
    assert "wide.png" in text and "20x18" in text and "16x16" in text, text
    # Without dataset moments, the batch of the two sizes says the same.
    with pytest.raises(OptionError, match=r"wide\.png\) came out 20x18 .*output_shape"):
        list(DataGenerator(paths).get_batch(batch_size=4, workers=0))
    # What the errors advise works: per-channel moments, and an output_shape.
    gen = DataGenerator(
        paths, dataset_zmuv=True, dataset_axis=(0, 1, 2), aug_params={"output_shape": (12, 12)}
    )
    pixels = np.concatenate([img_loader(p).reshape(-1, 3) for p in paths]).astype(np.float64)
    np.testing.assert_allclose(gen.mean, pixels.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(gen.std, pixels.std(axis=0), rtol=1e-6)
    assert next(iter(gen.get_batch(batch_size=4, workers=0))).shape == (4, 12, 12, 3)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_grey_image_among_rgb_ones_is_named_with_its_channels(mixed, workers):
    paths = [mixed[k] for k in ("a", "b", "grey", "c")]
    error = WorkerError if workers else OptionError
    with pytest.raises(error) as info:
        list(DataGenerator(paths).get_batch(batch_size=2, workers=workers))
    text = str(info.value)
    assert isinstance(info.value, DatumioError)
    assert "grey.png) has 1 channel (grey)" in text and "a.png) has 3 channels (RGB)" in text
    assert "dl_kwargs={'mode': 'RGB'}" in text and "size" not in text.split("\n")[0], text
    with pytest.raises(OptionError, match=r"grey\.png\) has 1 channel"):
        DataGenerator(paths, dataset_zmuv=True, dataset_axis=None)
    fixed = DataGenerator(paths, dl_kwargs={"mode": "RGB"}, dataset_zmuv=True)
    assert next(iter(fixed.get_batch(batch_size=4, workers=workers))).shape == (4, 16, 16, 3)
