"""Fields in loader batches: boxes, keypoints and masks follow the augmentation through real
workers and shared memory; other fields arrive as documented; text is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from builders import build_dataset
from fields_support import write_jsonl
from PIL import Image

import datumio
from datumio.errors import OptionError
from datumio.shards import format as fmt

pytestmark = pytest.mark.timeout(180)

W, H = 64, 48
TAGS = ["sky", "sea", "sand"]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 black images, each with one white rectangle: its box (with class), its mask, its
    centre and top-left corner as keypoints; an int, tags and a fixed array."""
    root = tmp_path_factory.mktemp("scenes")
    src = root / "src"
    src.mkdir()
    rng = np.random.default_rng(7)
    rows = []
    for k in range(12):
        x0, y0 = int(rng.integers(8, 28)), int(rng.integers(8, 20))
        x1, y1 = x0 + int(rng.integers(10, 24)), y0 + int(rng.integers(10, 18))
        img = np.zeros((H, W, 3), np.uint8)
        img[y0:y1, x0:x1] = 255
        Image.fromarray(img).save(src / f"s{k}.png")
        mask = np.zeros((H, W), np.uint8)
        mask[y0:y1, x0:x1] = 1 + k % 3
        Image.fromarray(mask, "L").save(src / f"m{k}.png")
        rows.append(
            {
                "path": f"s{k}.png",
                "label": ["a", "b"][k % 2],
                "boxes": [[x0, y0, x1, y1, k % 3]],
                "seg": f"m{k}.png",
                "kps": [[(x0 + x1) / 2, (y0 + y1) / 2, 2], [x0 + 0.5, y0 + 0.5, 2]],
                "n": k,
                "tags": [TAGS[k % 3], TAGS[(k + 1) % 3]] if k % 4 else [],
                "emb": [k, 2 * k, 3 * k],
                "note": f"scene {k}",
            }
        )
    labels = write_jsonl(src / "labels.jsonl", rows)
    fields = {"seg": "mask", "emb": "array:float32:3"}
    out = build_dataset(src, root / "scenes.lmdb", labels_file=str(labels), fields=fields)
    (root / "rows.json").write_text(json.dumps(rows))
    return out


AUGMENTED = datumio.Transform(
    size=(40, 40),
    rotation_range=(-30, 30),
    zoom_range=(0.8, 1.25),
    translation_range=(-4, 4),
    flip=0.5,
    normalize=False,
    dtype="uint8",
    layout="HWC",
    resample="nearest",
)


def _epoch(path: Path, transform: datumio.Transform, **options) -> tuple[tuple[str, ...], list]:
    with datumio.Loader(
        str(path), 4, transform=transform, workers=2, seed=3, epoch_size=24, **options
    ) as loader:
        return loader.batch_names, [tuple(np.array(a) for a in b) for b in loader]


def test_boxes_masks_and_keypoints_follow_the_augmentation(scenes: Path) -> None:
    names, batches = _epoch(
        scenes, AUGMENTED, fields=("boxes", "seg", "kps"), extras=("ids",), box_min_visible=0.0
    )
    assert names == (
        "images",
        "labels",
        "boxes",
        "boxes_classes",
        "boxes_count",
        "seg",
        "kps",
        "kps_count",
        "ids",
    )
    seen = 0
    for images, _, boxes, classes, count, seg, kps, kcount, ids in batches:
        assert boxes.shape == (4, 1, 4) and seg.shape == (4, 40, 40) and kps.shape == (4, 2, 3)
        for k in range(len(images)):
            white = images[k, :, :, 0] > 127
            if not white.any():  # the rectangle left the view: so did its box
                assert count[k] == 0 and classes[k, 0] == -1
                continue
            seen += 1
            assert count[k] == 1 and classes[k, 0] == int(ids[k]) % 3
            ys, xs = np.nonzero(white)
            want = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            np.testing.assert_allclose(boxes[k, 0], want, atol=1.0, err_msg=f"id {ids[k]}")
            # the mask is the same nearest warp: the rectangle's pixels, but for a sample
            # landing within 1/128 px of a pixel edge (the image rounds it the other way)
            inside = seg[k] == 1 + int(ids[k]) % 3
            assert (inside != white).sum() <= 2, f"id {ids[k]}"
            assert not (seg[k] == 255).any() or not white[seg[k] == 255].any()
            assert kcount[k] == 2
            x, y, v = kps[k, 0]
            if v:  # the centre keypoint lands in the rectangle
                assert white[int(y), int(x)], f"id {ids[k]}: centre at {(x, y)}"
    assert seen >= 20


def test_other_fields_arrive_as_documented(scenes: Path) -> None:
    rows = json.loads((scenes.parent / "rows.json").read_text())
    plain = datumio.Transform(size=(48, 64), normalize=False, dtype="uint8", layout="HWC")
    names, batches = _epoch(scenes, plain, fields=("n", "tags", "emb"), extras=("ids",))
    assert names == ("images", "labels", "n", "tags", "emb", "emb_count", "ids")
    ds = datumio.open(str(scenes))
    vocabulary = list(ds.fields["tags"].vocabulary)
    for _, labels, n, tags, emb, emb_count, ids in batches:
        for k, i in enumerate(ids.tolist()):
            row = rows[int(ds.source(i)[1:].split(".")[0])]
            assert n[k] == row["n"] and labels[k] == ["a", "b"].index(row["label"])
            hot = [vocabulary[t] for t in np.flatnonzero(tags[k])]
            assert sorted(hot) == sorted(set(row["tags"]))
            assert tags.dtype == np.uint8 and tags.shape[1] == len(vocabulary)
            assert emb[k].tolist() == row["emb"] and emb_count[k] == 3


def test_unusable_fields_are_refused(scenes: Path) -> None:
    with pytest.raises(OptionError, match=r"note.*text"):
        datumio.Loader(str(scenes), 4, fields=("note",))
    with pytest.raises(OptionError, match="no field 'nope'"):
        datumio.Loader(str(scenes), 4, fields=("nope",))
    with pytest.raises(OptionError, match="tuple"):
        datumio.Loader(str(scenes), 4, fields="boxes")
    assert fmt.INT_ABSENT == -(2**63)


def test_balance_by_a_multilabel_field(scenes: Path) -> None:
    ds = datumio.open(str(scenes))
    offsets, values = ds.field_index("tags")
    with (
        pytest.warns(UserWarning, match=r"no records.*\[2\]"),
        datumio.Loader(
            ds, 4, workers=1, seed=0, epoch_size=400, balance_by="tags", extras=("ids",)
        ) as loader,
    ):
        ids = np.concatenate([np.array(b[2]) for b in loader])
    # derived here: each record's rarest tag (fewest records carry it, ties to lower id)
    counts = np.bincount(values, minlength=3)
    group = []
    for i in range(len(ds)):
        mine = values[offsets[i] : offsets[i + 1]]
        group.append(3 if len(mine) == 0 else min(mine, key=lambda t: (counts[t], t)))
    drawn = np.bincount(np.asarray(group)[ids], minlength=4)
    # every tag is on 6 records, so ties go to the lower id and "sand" is never the rarest:
    # groups sky, sea and "no tag" share 400 draws, the remainder to the lowest id
    assert sorted(set(group)) == [0, 1, 3]
    assert drawn.tolist() == [134, 133, 0, 133]
    with pytest.raises(OptionError, match="balance_by='note'"):
        datumio.Loader(ds, 4, balance_by="note")


def test_adapters_pass_fields_through(scenes: Path) -> None:
    from datumio.adapters.tf import output_shapes

    loader = datumio.Loader(
        str(scenes), 4, transform=AUGMENTED, workers=1, epoch_size=8, fields=("boxes", "tags")
    )
    with loader:
        assert output_shapes(loader) == [
            ((4, 40, 40, 3), "uint8"),
            ((4,), "int64"),
            ((4, 1, 4), "float32"),
            ((4, 1), "int32"),
            ((4,), "int32"),
            ((4, 3), "uint8"),
        ]
        torch = pytest.importorskip("torch")
        from datumio.adapters.torch import TorchIterable

        for named in TorchIterable(loader, as_dict=True):
            assert list(named) == list(loader.batch_names)
            assert named["boxes"].dtype == torch.float32 and named["boxes"].shape == (4, 1, 4)
            assert named["tags"].shape == (4, 3) and named["boxes_count"].shape == (4,)
            break
