"""Outside augmentation pipelines in datumio's workers: ``Transform(pipeline=...)``.

A torchvision ``transforms.v2`` pipeline and an albumentations ``Compose`` with rotation, a
flip and a crop get the decoded record with its boxes, mask and keypoints. Checked on a real
LMDB dataset of mixed sizes, with real Loader workers:

* the same pipeline run outside datumio, seeded with the sample's seed, gives the same
  pixels, boxes, mask and keypoints (MapDataset) — and the Loader's batches equal them;
* geometrically: in every sample of a Loader epoch the box bounds the mask's rectangle, the
  bright pixels of the image are the mask's pixels, and the centre keypoint lies in the mask;
* what does not fit fails the batch with a message that says what to do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import datumio
from datumio.augment.records import sample_seed
from datumio.augment.seeds import sample_rng
from datumio.errors import LoaderError, OptionError, TransformError

torch = pytest.importorskip("torch")
v2 = pytest.importorskip("torchvision.transforms.v2")
tv_tensors = pytest.importorskip("torchvision.tv_tensors")
A = pytest.importorskip("albumentations")
from datumio.adapters.torch import MapDataset  # noqa: E402

SIZE = 48
FIELDS = ("boxes", "mask", "points")


def _records(n: int = 8) -> list[dict]:
    """Grey noise images of mixed sizes, each with one white rectangle: its box (class
    i % 3), its mask (label 1) and a keypoint at its centre plus one at a corner."""
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        h, w = 64 + 8 * (i % 3), 80 + 12 * (i % 2)
        image = rng.integers(0, 100, (h, w, 3), dtype=np.uint8)
        x0, y0 = 16 + i, 14 + (i % 4)
        x1, y1 = x0 + 30 + 2 * (i % 3), y0 + 24
        image[y0:y1, x0:x1] = 255
        mask = np.zeros((h, w), np.uint8)
        mask[y0:y1, x0:x1] = 1
        boxes = np.array([[x0, y0, x1, y1, i % 3]], np.float32)
        points = np.array([[(x0 + x1) / 2, (y0 + y1) / 2, 2], [x0 + 0.5, y0 + 0.5, 2]], np.float32)
        out.append({"image": image, "label": i % 2, "boxes": boxes, "mask": mask, "points": points})
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> datumio.Dataset:
    out = tmp_path_factory.mktemp("bridges") / "rects.lmdb"
    with datumio.Writer(out, fields={"points": "keypoints"}) as writer:
        for r in _records():
            writer.add(r["image"], r["label"], boxes=r["boxes"], mask=r["mask"], points=r["points"])
    return datumio.open(out)


def _torchvision() -> object:
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(p=0.5),
            v2.RandomRotation(25),
            v2.RandomResizedCrop(SIZE, scale=(0.6, 1.0), antialias=True),
            v2.SanitizeBoundingBoxes(min_size=1),
        ]
    )


def _albumentations() -> object:
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Rotate(limit=25, p=1.0, border_mode=0),
            A.RandomResizedCrop((SIZE, SIZE), scale=(0.6, 1.0)),
        ],
        bbox_params=A.BboxParams(format="coco", label_fields=["labels"], min_area=1),
        keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
    )


def _transform(pipeline: object) -> datumio.Transform:
    return datumio.Transform(
        size=SIZE, pipeline=pipeline, dtype="uint8", layout="HWC", normalize=False
    )


def _outside_torchvision(pipeline, record: dict, seed: int) -> dict:
    """The pipeline run the torchvision way on a record, outside datumio."""
    h, w = record["image"].shape[:2]
    image = tv_tensors.Image(torch.from_numpy(record["image"]).permute(2, 0, 1))
    target = {
        "boxes": tv_tensors.BoundingBoxes(
            torch.from_numpy(record["boxes"][:, :4]), format="XYXY", canvas_size=(h, w)
        ),
        "labels": torch.from_numpy(record["boxes"][:, 4].astype(np.int64)),
        "mask": tv_tensors.Mask(torch.from_numpy(record["mask"])),
        "points": tv_tensors.KeyPoints(
            torch.from_numpy(record["points"][:, :2].copy()), canvas_size=(h, w)
        ),
    }
    torch.manual_seed(seed)
    image, target = pipeline(image, target)
    return {
        "image": image.permute(1, 2, 0).numpy(),
        "boxes": target["boxes"].numpy(),
        "classes": target["labels"].numpy(),
        "mask": target["mask"].numpy(),
        "points": target["points"].numpy(),
    }


def _outside_albumentations(pipeline, record: dict, seed: int) -> dict:
    """The pipeline run the albumentations way on a record, outside datumio."""
    x0, y0, x1, y1, cls = record["boxes"][0]
    pipeline.set_random_seed(seed)
    out = pipeline(
        image=record["image"],
        bboxes=np.array([[x0, y0, x1 - x0, y1 - y0]]),
        labels=np.array([int(cls)]),
        mask=record["mask"],
        keypoints=record["points"][:, :2],
    )
    boxes = np.asarray(out["bboxes"]).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    return {
        "image": out["image"],
        "boxes": boxes,
        "classes": np.asarray(out["labels"]),
        "mask": out["mask"],
        "points": np.asarray(out["keypoints"]),
    }


BRIDGES = {
    "torchvision": (_torchvision, _outside_torchvision),
    "albumentations": (_albumentations, _outside_albumentations),
}


@pytest.mark.parametrize("name", sorted(BRIDGES))
def test_a_sample_equals_the_same_pipeline_run_outside_datumio(dataset, name) -> None:
    make, outside = BRIDGES[name]
    ds = MapDataset(dataset, _transform(make()), fields=FIELDS, seed=11)
    ds.set_epoch(2)
    for i in range(len(dataset)):
        got = ds[i]
        want = outside(make(), _records()[i], sample_seed(sample_rng(11, 2, i)))
        np.testing.assert_array_equal(got["image"].numpy(), want["image"])
        np.testing.assert_array_equal(got["mask"].numpy(), want["mask"])
        np.testing.assert_allclose(got["boxes"].numpy(), want["boxes"], atol=1e-4)
        np.testing.assert_array_equal(got["boxes_classes"].numpy(), want["classes"])
        np.testing.assert_allclose(got["points"].numpy()[:, :2], want["points"][:, :2], atol=1e-4)


@pytest.mark.parametrize("name", sorted(BRIDGES))
def test_loader_workers_run_the_pipeline_as_it_runs_outside(dataset, name) -> None:
    """A Loader's sample at epoch position p is the pipeline's result on its record,
    seeded with sample_seed(sample_rng(seed, epoch, p)), whichever worker made it."""
    make, outside = BRIDGES[name]
    loader = datumio.Loader(
        dataset, 3, transform=_transform(make()), fields=FIELDS, workers=2, seed=5, extras=("ids",)
    )
    position = 0
    with loader:
        for batch in loader:
            entries = dict(zip(loader.batch_names, batch, strict=True))
            for k, record in enumerate(entries["ids"]):
                want = outside(make(), _records()[record], sample_seed(sample_rng(5, 0, position)))
                np.testing.assert_array_equal(entries["images"][k], want["image"])
                np.testing.assert_array_equal(entries["mask"][k], want["mask"])
                count = int(entries["boxes_count"][k])
                np.testing.assert_allclose(entries["boxes"][k, :count], want["boxes"], atol=1e-4)
                _check_geometry(entries, k)
                position += 1
    assert position == 3 * len(loader) == 6


@pytest.mark.parametrize("name", sorted(BRIDGES))
def test_boxes_masks_and_keypoints_move_with_the_pixels(dataset, name) -> None:
    make, _ = BRIDGES[name]
    ds = MapDataset(dataset, _transform(make()), fields=FIELDS, seed=3)
    checked = 0
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            sample = {k: np.asarray(v)[None] for k, v in ds[i].items()}
            sample["images"] = sample.pop("image")
            checked += _check_geometry(sample, 0)
    assert checked >= 16  # most samples keep their rectangle in view


def _check_geometry(entries: dict, k: int) -> int:
    mask = entries["mask"][k] == 1
    if entries["boxes_count"][k] == 0 or mask.sum() < 20:
        return 0  # cropped out of view
    bright = entries["images"][k].min(axis=2) > 200
    # The image's white rectangle and the mask's agree but for a rim of interpolation (the
    # image is resampled bilinear, the mask nearest; OpenCV's nearest is off by half a pixel).
    grown = _dilate(mask)
    assert not (bright & ~_dilate(grown)).any()
    assert (mask & ~_dilate(bright)).sum() <= 0.02 * mask.sum()
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = entries["boxes"][k, 0]
    # The box bounds the rectangle (rotated boxes bound its corners: 1.5 px of slack).
    assert x0 - 1.5 <= xs.min() and xs.max() + 1 <= x1 + 1.5
    assert y0 - 1.5 <= ys.min() and ys.max() + 1 <= y1 + 1.5
    assert entries["boxes_classes"][k, 0] in (0, 1, 2)
    cx, cy, seen = entries["points"][k, 0]
    if seen:
        assert grown[int(cy), int(cx)]
    return 1


def _dilate(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def _swap_record(record: dict, rng: np.random.Generator) -> dict:
    """A pipeline function: the whole record in, the record out (flipped left-right and
    cut to the output size at the top-left corner)."""
    out = dict(record)
    image = record["image"][:SIZE, ::-1][:, :SIZE]
    out["image"] = np.ascontiguousarray(image)
    w = record["image"].shape[1]
    boxes = record["boxes"].copy()
    boxes[:, [0, 2]] = w - record["boxes"][:, [2, 0]] - (w - SIZE)
    out["boxes"] = boxes
    out["mask"] = np.ascontiguousarray(record["mask"][:SIZE, ::-1][:, :SIZE])
    out["points"] = record["points"]
    return out


def test_a_pipeline_function_gets_the_record_and_its_fields(dataset) -> None:
    transform = datumio.Transform(size=SIZE, pipeline=_swap_record, dtype="uint8", layout="HWC")
    sample = MapDataset(dataset, transform, fields=FIELDS)[0]
    record = _records()[0]
    w = record["image"].shape[1]
    np.testing.assert_array_equal(sample["image"].numpy(), record["image"][:SIZE, ::-1][:, :SIZE])
    x1 = record["boxes"][0, 2]
    assert sample["boxes"].numpy()[0, 0] == w - x1 - (w - SIZE)
    assert sample["boxes_classes"].tolist() == [0]
    # keypoints out of the output get visibility 0, as datumio's own geometry leaves them
    visible = sample["points"].numpy()[:, 2]
    inside = (record["points"][:, 0] < SIZE) & (record["points"][:, 1] < SIZE)
    np.testing.assert_array_equal(visible > 0, inside)


def _wrong_size(record: dict, rng: np.random.Generator) -> dict:
    return {**record, "image": record["image"][:10, :10]}


def test_an_image_of_another_size_fails_the_batch_and_says_what_to_do(dataset) -> None:
    transform = datumio.Transform(size=SIZE, pipeline=_wrong_size)
    with pytest.raises(TransformError, match=r"end it with a resize or crop"):
        MapDataset(dataset, transform)[0]
    loader = datumio.Loader(dataset, 2, transform=transform, workers=1)
    with loader, pytest.raises(LoaderError, match=r"pipeline=.*_wrong_size"):
        next(iter(loader))


def test_a_float_torchvision_output_is_refused() -> None:
    pipeline = v2.Compose([v2.Resize((SIZE, SIZE)), v2.ToDtype(torch.float32, scale=True)])
    record = {"image": np.zeros((60, 70, 3), np.uint8), "label": 0}
    with pytest.raises(TransformError, match=r"drop ToDtype/Normalize"):
        datumio.augment.records.run(pipeline, record, {}, np.random.default_rng(0))


def test_albumentations_keypoints_that_may_vanish_are_refused(dataset) -> None:
    pipeline = A.Compose(
        [A.Resize(SIZE, SIZE)],
        bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]),
        keypoint_params=A.KeypointParams(format="xy"),
    )
    with pytest.raises(TransformError, match=r"remove_invisible=False"):
        MapDataset(dataset, _transform(pipeline), fields=FIELDS)[0]


def test_datumio_geometry_with_a_pipeline_is_refused() -> None:
    with pytest.raises(OptionError, match=r"rotation_range, flip\): the pipeline owns"):
        datumio.Transform(size=8, pipeline=_swap_record, rotation_range=(-5, 5), flip=0.5)
    with pytest.raises(OptionError, match=r"pipeline cannot come from JSON"):
        datumio.augment.transform_from_dict({"size": 8, "pipeline": "x"})
    with pytest.raises(OptionError, match=r"give a torchvision v2"):
        datumio.Transform(size=8, pipeline=3)


def test_a_first_api_torchvision_transform_is_pointed_to_v2() -> None:
    from torchvision import transforms as v1

    record = {"image": np.zeros((8, 8, 3), np.uint8), "label": 0}
    with pytest.raises(TransformError, match=r"use torchvision.transforms.v2"):
        datumio.augment.records.run(v1.Resize(4), record, {}, np.random.default_rng(0))


def test_the_record_image_is_a_copy_the_pipeline_may_write_into(tmp_path: Path) -> None:
    source = np.full((20, 20, 3), 9, np.uint8)
    spec = datumio.Transform(size=20, pipeline=_scribble, dtype="uint8", layout="HWC")
    out = np.empty((20, 20, 3), np.uint8)
    datumio.augment.records.apply_record(spec, source, np.random.default_rng(0), out, {}, {})
    assert (source == 9).all() and (out == 0).all()


def _scribble(record: dict, rng: np.random.Generator) -> dict:
    record["image"][:] = 0
    return record
