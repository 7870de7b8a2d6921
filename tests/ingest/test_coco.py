"""The COCO importer: a COCO JSON beside an image folder becomes records with typed fields.

Every scene is drawn here: black 64x48 images with coloured rectangles, and a JSON that
annotates them with boxes, polygons, uncompressed and compressed RLE, crowds, keypoints,
an image without annotations and bad rows. The stored boxes, masks and keypoints are
compared with what was drawn, pixel for pixel.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import ingest_cli
from PIL import Image

import datumio
from datumio.errors import IngestError
from datumio.fields.spec import FieldValueError, parse_declaration
from datumio.ingest.coco import flip_pairs, list_coco
from datumio.ingest.coco_ingest import from_coco
from datumio.ingest.coco_masks import CocoMask, Polygons, Rle, decode_rle_text
from datumio.ingest.field_work import Geometry, encode_fields
from datumio.ingest.plan import make_plan

W, H = 64, 48
#: Category ids out of order and with gaps: classes follow the ids (person, car, dog).
CATEGORIES = [{"id": 18, "name": "dog"}, {"id": 1, "name": "person"}, {"id": 3, "name": "car"}]
PERSON, CAR, DOG, BACKGROUND = 0, 1, 2, 3
KEYPOINTS = ["nose", "left_eye", "right_eye", "left_wrist", "right_wrist"]


def _rect(x0: int, y0: int, x1: int, y1: int) -> list[list[float]]:
    """A rectangle as a COCO polygon (corners in pixel-edge coordinates)."""
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def _region(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    out = np.zeros((H, W), dtype=bool)
    out[y0:y1, x0:x1] = True
    return out


def _runs(region: np.ndarray) -> list[int]:
    """COCO's runs of a binary mask: column-major, alternating 0 and 1, starting with 0."""
    flat = region.T.reshape(-1).astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], edges, [flat.size]])
    runs = np.diff(bounds).tolist()
    return runs if flat[0] == 0 else [0, *runs]


def _rle_text(runs: list[int]) -> str:
    """COCO's compressed text of ``runs``, as pycocotools' ``rleToString`` writes it."""
    out = []
    for k, run in enumerate(runs):
        value = run - runs[k - 2] if k > 2 else run
        more = True
        while more:
            group = value & 0x1F
            value >>= 5
            more = value != -1 if group & 0x10 else value != 0
            out.append(chr(48 + (group | 0x20 if more else group)))
    return "".join(out)


def _draw(path: Path, rects: list[tuple[int, int, int, int, tuple[int, int, int]]]) -> None:
    img = np.zeros((H, W, 3), np.uint8)
    for x0, y0, x1, y1, colour in rects:
        img[y0:y1, x0:x1] = colour
    Image.fromarray(img).save(path)


def _ann(ann_id: int, image_id: int, category: int, bbox: list[int], **more: Any) -> dict:
    area = bbox[2] * bbox[3]
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category,
        "bbox": bbox,
        "area": area,
        "iscrowd": 0,
        **more,
    }


def _image(image_id: int, name: str) -> dict:
    return {"id": image_id, "file_name": name, "width": W, "height": H}


RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
#: The rectangles of each picture (x0, y0, x1, y1, colour), drawn in order: one per
#: annotation, in the annotations' order.
DRAWN = {
    "a.png": [(8, 6, 28, 22, RED), (20, 16, 40, 30, GREEN)],
    "b.png": [(40, 10, 60, 40, BLUE), (4, 4, 14, 9, GREEN)],
    "c.png": [(30, 20, 50, 44, BLUE)],
    "d.png": [],
    "e.png": [(50, 40, 64, 48, GREEN)],
    "f.png": [(1, 1, 5, 5, RED)],
}


@pytest.fixture(scope="module")
def instances(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A drawn instances JSON and its images (see the module docstring), and the dataset."""
    root = tmp_path_factory.mktemp("coco")
    src = root / "images"
    src.mkdir()
    (root / "outside.png").write_bytes(b"")
    for name, rects in DRAWN.items():
        _draw(src / name, rects)
    crowd = {"size": [H, W], "counts": _runs(_region(40, 10, 60, 40))}
    packed = {"size": [H, W], "counts": _rle_text(_runs(_region(30, 20, 50, 44)))}
    coco = {
        "info": {"description": "drawn"},
        "images": [
            _image(1, "a.png"),
            _image(2, "b.png"),
            _image(3, "c.png"),
            _image(4, "d.png"),
            _image(5, "e.png"),
            _image(6, "f.png"),
            _image(7, "missing.png"),
            _image(8, "../outside.png"),
        ],
        "annotations": [
            _ann(101, 1, 18, [8, 6, 20, 16], segmentation=_rect(8, 6, 28, 22)),
            _ann(102, 1, 3, [20, 16, 20, 14], segmentation=_rect(20, 16, 40, 30)),
            _ann(201, 2, 1, [40, 10, 20, 30], segmentation=crowd, iscrowd=1),
            _ann(202, 2, 3, [4, 4, 10, 5], segmentation=_rect(4, 4, 14, 9)),
            _ann(301, 3, 1, [30, 20, 20, 24], segmentation=packed),
            _ann(501, 5, 3, [50, 40, 20, 10], segmentation=_rect(50, 40, 64, 48)),
            _ann(601, 6, 18, [1, 1, 4, 4], segmentation=[[1, 1, 5, 1, 5]]),
            _ann(901, 99, 18, [1, 1, 4, 4]),
        ],
        "categories": CATEGORIES,
    }
    (root / "instances.json").write_text(json.dumps(coco), encoding="utf-8")
    datumio.ingest(
        src, root / "out.lmdb", importer="coco", labels_file=str(root / "instances.json"), workers=1
    )
    return root / "out.lmdb"


def _by_source(ds: datumio.Dataset) -> dict[str, int]:
    return {ds.source(i): i for i in range(len(ds))}


def test_classes_labels_and_rejects(instances: Path) -> None:
    ds = datumio.open(instances)
    assert ds.class_names == ["person", "car", "dog", "background"]
    at = _by_source(ds)
    assert [ds.source(i) for i in range(len(ds))] == ["a.png", "b.png", "c.png", "d.png"]
    labels = {name: int(ds.labels[i]) for name, i in at.items()}
    # a: the dog is larger than the car; b: the car is the largest annotation that is not a
    # crowd; c: a person; d: no annotation at all
    assert labels == {"a.png": DOG, "b.png": CAR, "c.png": PERSON, "d.png": BACKGROUND}
    assert ds.manifest.ingest is not None and ds.manifest.ingest.input == "coco"
    assert [ds.field(at[f"{n}.png"], "image_id") for n in "abcd"] == [1, 2, 3, 4]
    ids = ds.field_index("image_id")
    assert sorted(ids.tolist()) == [1, 2, 3, 4]
    rejects = {(r["path"], r["reason"]) for r in _rejects(instances)}
    assert rejects == {
        ("e.png", "box outside the image"),
        ("f.png", "bad segmentation"),
        ("missing.png", "file not found"),
        ("../outside.png", "path contains '..'"),
        ("annotation 901", "unknown image id"),
    }


def _rejects(dataset: Path) -> list[dict[str, Any]]:
    text = (dataset / "rejects.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_boxes_are_the_drawn_rectangles(instances: Path) -> None:
    ds = datumio.open(instances)
    at = _by_source(ds)
    classes = {"a.png": [DOG, CAR], "b.png": [PERSON, CAR], "c.png": [PERSON], "d.png": []}
    for name, want in classes.items():
        record = ds.record(at[name])
        boxes = record["boxes"]
        assert boxes.boxes.tolist() == [list(rect[:4]) for rect in DRAWN[name]], name
        assert boxes.classes.tolist() == want
        # the last rectangle drawn is whole in the picture: its box ends where its pixels do
        if want:
            ys, xs = np.nonzero((record["image"] == DRAWN[name][-1][4]).all(axis=2))
            edges = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            assert boxes.boxes[-1].tolist() == edges, name
    assert ds.fields["boxes"].extra["category_ids"] == [1, 3, 18]
    assert ds.record(at["a.png"])["iscrowd"].tolist() == [0, 0]
    assert ds.record(at["b.png"])["iscrowd"].tolist() == [1, 0]
    assert ds.record(at["b.png"])["annotation_ids"].tolist() == [201, 202]
    assert ds.record(at["d.png"])["iscrowd"].size == 0


def test_masks_are_the_drawn_shapes_pixel_for_pixel(instances: Path) -> None:
    ds = datumio.open(instances)
    at = _by_source(ds)
    want = {name: np.zeros((H, W), np.uint8) for name in "abcd"}
    numbers = {name: np.zeros((H, W), np.uint8) for name in "abcd"}
    # a: two polygons, the car drawn over the dog where they overlap
    want["a"][_region(8, 6, 28, 22)], numbers["a"][_region(8, 6, 28, 22)] = DOG + 1, 1
    want["a"][_region(20, 16, 40, 30)], numbers["a"][_region(20, 16, 40, 30)] = CAR + 1, 2
    # b: a crowd as uncompressed RLE, then a polygon
    want["b"][_region(40, 10, 60, 40)], numbers["b"][_region(40, 10, 60, 40)] = PERSON + 1, 1
    want["b"][_region(4, 4, 14, 9)], numbers["b"][_region(4, 4, 14, 9)] = CAR + 1, 2
    # c: compressed RLE
    want["c"][_region(30, 20, 50, 44)], numbers["c"][_region(30, 20, 50, 44)] = PERSON + 1, 1
    for name in "abcd":
        record = ds.record(at[f"{name}.png"])
        np.testing.assert_array_equal(record["mask"], want[name], err_msg=name)
        np.testing.assert_array_equal(record["instances"], numbers[name], err_msg=name)


def test_the_rle_text_decoder_reads_hand_encoded_runs() -> None:
    # worked by hand: 3 -> "3"; from the fourth run on the text holds the difference to
    # the run two before (4 - 2 = 2 -> "2"; 1 - 6 = -5 -> 27 = "K", its 0x10 the sign);
    # 100 = 4 + 3 * 32 -> "T" (4 | 0x20 more) then "3"
    assert decode_rle_text("3252") == [3, 2, 5, 4]
    assert decode_rle_text("365K") == [3, 6, 5, 1]
    assert decode_rle_text("T3") == [100]
    assert _rle_text([3, 6, 5, 1]) == "365K"
    runs = _runs(_region(5, 7, 61, 40))
    assert decode_rle_text(_rle_text(runs)) == runs
    for bad in ("3 2", "T", "0K"):  # outside the code; stops inside a run; negative
        with pytest.raises(ValueError):
            decode_rle_text(bad)


def _inside_by_ray(ring: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixel centres inside ``ring`` (even-odd), one point at a time."""
    out = np.zeros((height, width), dtype=bool)
    n = len(ring)
    for r in range(height):
        for c in range(width):
            px, py, inside = c + 0.5, r + 0.5, False
            for i in range(n):
                (x0, y0), (x1, y1) = ring[i], ring[(i + 1) % n]
                if (y0 <= py < y1 or y1 <= py < y0) and px >= x0 + (py - y0) * (x1 - x0) / (
                    y1 - y0
                ):
                    inside = not inside
            out[r, c] = inside
    return out


def test_a_polygon_covers_the_pixels_whose_centre_is_inside() -> None:
    rng = np.random.default_rng(5)
    for trial in range(12):
        ring = (rng.random((int(rng.integers(3, 8)), 2)) * [26, 20] - 3).astype(np.float32)
        if trial % 2:
            ring = np.round(ring * 2) / 2  # vertices on pixel edges and centres
        canvas = np.zeros((16, 22), np.uint8)
        Polygons((ring,)).draw(canvas, 7)
        np.testing.assert_array_equal(canvas == 7, _inside_by_ray(ring, 16, 22), f"{ring}")
    # two polygons of one annotation are united, not cut out of each other
    both = Polygons(
        (np.float32([[0, 0], [6, 0], [6, 6], [0, 6]]), np.float32([[2, 2], [4, 2], [4, 4], [2, 4]]))
    )
    canvas = np.zeros((8, 8), np.uint8)
    both.draw(canvas, 1)
    np.testing.assert_array_equal(canvas.astype(bool), _region(0, 0, 6, 6)[:8, :8])


def _geometry(stored: tuple[int, int]) -> Geometry:
    return Geometry(source=(W, H), stored=stored, crop=(0.0, 0.0, float(W), float(H)))


@pytest.mark.parametrize("stored", [(W, H), (32, 24)], ids=["same-size", "resized"])
def test_a_mask_as_a_path_png_bytes_an_array_or_a_recipe_stores_the_same(
    tmp_path: Path, stored: tuple[int, int]
) -> None:
    labels = np.zeros((H, W), np.uint8)
    labels[_region(9, 5, 31, 27)] = 4
    Image.fromarray(labels, "L").save(tmp_path / "m.png")
    png = (tmp_path / "m.png").read_bytes()
    recipe = CocoMask((Polygons((np.float32([[9, 5], [31, 5], [31, 27], [9, 27]]),)),), (4,))
    spec = parse_declaration("seg", "mask")
    forms = ["m.png", png, labels, labels.astype(np.int32), recipe]
    stored_bytes = [
        encode_fields((spec,), {"seg": form}, _geometry(stored), str(tmp_path))[0] for form in forms
    ]
    assert all(b == stored_bytes[0] for b in stored_bytes)
    with Image.open(io.BytesIO(stored_bytes[0])) as img:
        assert img.size == stored and img.getextrema() == (0, 4)


@pytest.mark.parametrize(
    ("form", "detail"),
    [
        (np.zeros((H, W, 3), np.uint8), "not a label image"),
        (np.zeros((H, W), np.float32), "not a label image"),
        (np.zeros((H - 1, W), np.uint8), f"{W}x{H - 1}, the image is {W}x{H}"),
        (np.full((H, W), 300, np.int32), "label values outside 0..255"),
        (b"not a png", "unreadable"),
        (CocoMask((Rle("3252", 2, 2),), (1,)), f"an RLE of 2x2 on a {W}x{H} image"),
        (CocoMask((Rle("3 2", H, W),), (1,)), "compressed RLE"),
        (CocoMask((Rle(np.int64([5, 5]), H, W),), (1,)), "RLE runs cover 10 pixels"),
        (CocoMask((), (), size=(W + 1, H)), "the COCO JSON gives the image as 65x48"),
    ],
    ids=["rgb", "float", "size", "range", "bytes", "rle-size", "rle-text", "rle-runs", "json"],
)
def test_a_mask_that_does_not_fit_is_a_bad_mask(form: Any, detail: str) -> None:
    spec = parse_declaration("seg", "mask")
    with pytest.raises(FieldValueError) as caught:
        encode_fields((spec,), {"seg": form}, _geometry((W, H)), "/")
    assert caught.value.reason == "bad mask"
    assert caught.value.detail.startswith("field 'seg': ") and detail in caught.value.detail


def _listing(tmp_path: Path, coco: Any, **options: Any) -> Any:
    (tmp_path / "images").mkdir(exist_ok=True)
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco), encoding="utf-8")
    opts = datumio.IngestOptions(importer="coco", labels_file=str(path), **options)
    return list_coco(str(tmp_path / "images"), str(path), opts)


@pytest.mark.parametrize(
    ("coco", "said"),
    [
        ([{"images": []}], "holds a JSON list"),
        ({"images": [], "categories": []}, "has no list 'annotations'"),
        ({"images": [], "annotations": [], "categories": [{"id": 1}]}, "categories[0]"),
        ({"images": [], "annotations": [], "categories": CATEGORIES * 2}, "listed twice"),
    ],
    ids=["list", "no-annotations", "nameless-category", "repeated-category"],
)
def test_a_json_that_is_not_coco_says_what_is_expected(
    tmp_path: Path, coco: Any, said: str
) -> None:
    with pytest.raises(IngestError) as caught:
        _listing(tmp_path, coco)
    assert said in str(caught.value)


@pytest.mark.parametrize(
    ("change", "reason", "said"),
    [
        ({"bbox": [1, 1, 5, 0]}, "bad box", "x1 <= x0 or y1 <= y0"),
        ({"category_id": 2}, "bad annotation", "category_id 2 is not a category"),
        ({"bbox": [1, 1, 5]}, "bad annotation", "bbox is not 4 numbers"),
        ({"iscrowd": 2}, "bad annotation", "iscrowd 2 is not 0 or 1"),
        ({"segmentation": {"size": [H, W], "counts": [1, -1]}}, "bad segmentation", "RLE"),
        ({"segmentation": [[1, 1, 5, 1, "x", 5]]}, "bad segmentation", "not a number"),
    ],
    ids=["flat-box", "category", "bbox", "iscrowd", "rle-runs", "polygon"],
)
def test_a_bad_annotation_rejects_its_image(
    tmp_path: Path, change: dict[str, Any], reason: str, said: str
) -> None:
    (tmp_path / "images").mkdir()
    for name in ("x.png", "y.png"):
        _draw(tmp_path / "images" / name, [])
    anns = [{**_ann(1, 1, 3, [1, 1, 4, 4]), **change}, _ann(2, 2, 3, [1, 1, 4, 4])]
    images = [_image(1, "x.png"), _image(2, "y.png"), _image(2, "x.png"), {"id": 3}]
    listing = _listing(tmp_path, {"images": images, "annotations": anns, "categories": CATEGORIES})
    assert [item.rel for item in listing.items] == ["y.png"]
    found = [(r.path, r.reason) for r in listing.rejects]
    assert found == [
        ("x.png", reason),
        ("x.png", "duplicate image id"),
        ("images[3]", "bad image entry"),
    ]
    assert said in listing.rejects[0].detail and "image id 1" in listing.rejects[0].detail


def test_options_the_json_decides_are_refused(tmp_path: Path) -> None:
    coco = {"images": [], "annotations": [], "categories": CATEGORIES}
    with pytest.raises(IngestError, match="class_names"):
        _listing(tmp_path, coco, class_names=["dog"])


def test_more_annotations_than_a_uint8_numbers_leave_out_the_instance_mask(
    tmp_path: Path,
) -> None:
    (tmp_path / "images").mkdir()
    _draw(tmp_path / "images" / "many.png", [])
    anns = [
        _ann(k, 1, 3, [k % 60, 0, 1, 1], segmentation=_rect(k % 60, 0, k % 60 + 1, 1))
        for k in range(256)
    ]
    coco = {"images": [_image(1, "many.png")], "annotations": anns, "categories": CATEGORIES}
    (item,) = _listing(tmp_path, coco).items
    assert "instances" not in item.fields and len(item.fields["boxes"]) == 256
    assert item.fields["mask"].render(W, H)[0, :60].tolist() == [CAR + 1] * 60
    coco["annotations"] = anns[:255]
    (item,) = _listing(tmp_path, coco).items
    last_drawn = [max(k for k in range(255) if k % 60 == x) for x in range(60)]
    assert item.fields["instances"].render(W, H)[0, :60].tolist() == [k + 1 for k in last_drawn]


def test_the_plan_fingerprint_follows_the_shapes(tmp_path: Path) -> None:
    _draw(tmp_path / "x.png", [])
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "x.png").write_bytes((tmp_path / "x.png").read_bytes())

    def fingerprint(corner: int) -> str:
        ann = _ann(1, 1, 3, [2, 2, 8, 8], segmentation=_rect(2, 2, corner, 10))
        coco = {"images": [_image(1, "x.png")], "annotations": [ann], "categories": CATEGORIES}
        listing = _listing(tmp_path, coco)
        options = datumio.IngestOptions(importer="coco", labels_file=str(tmp_path / "coco.json"))
        src = str(tmp_path / "images")
        return make_plan(src, listing.items, listing.class_names, options, "lmdb").fingerprint

    assert fingerprint(10) == fingerprint(10) != fingerprint(11)


def test_flip_pairs_pair_left_and_right_names() -> None:
    assert flip_pairs(KEYPOINTS) == [[1, 2], [3, 4]]
    assert flip_pairs(["Left hand", "head", "Right hand"]) == [[0, 2]]
    assert flip_pairs(["a", "b"]) == []


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A person_keypoints JSON: one image with two people, one with nobody."""
    root = tmp_path_factory.mktemp("keypoints")
    src = root / "images"
    src.mkdir()
    _draw(src / "two.png", [(10, 5, 30, 40, RED), (40, 5, 60, 40, GREEN)])
    _draw(src / "none.png", [])
    first = [20, 8, 2, 16, 10, 2, 24, 10, 1, 0, 0, 0, 28, 30, 2]
    second = [50, 8, 2, 46, 10, 2, 54, 10, 2, 42, 30, 1, 0, 0, 0]
    coco = {
        "images": [_image(1, "two.png"), _image(2, "none.png")],
        "annotations": [
            _ann(11, 1, 1, [10, 5, 20, 35], keypoints=first, num_keypoints=4),
            _ann(12, 1, 1, [40, 5, 20, 35], keypoints=second, num_keypoints=4),
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": KEYPOINTS, "skeleton": [[2, 3]]}],
    }
    (root / "person_keypoints.json").write_text(json.dumps(coco), encoding="utf-8")
    from_coco(src, root / "person_keypoints.json", root / "people.lmdb", workers=1)
    return root / "people.lmdb"


def test_keypoints_names_and_flip_pairs_are_stored(people: Path) -> None:
    ds = datumio.open(people)
    assert ds.class_names == ["person", "background"]
    assert list(ds.fields) == ["image_id", "boxes", "iscrowd", "annotation_ids", "keypoints"]
    extra = {"names": KEYPOINTS, "flip_pairs": [[1, 2], [3, 4]]}
    assert dict(ds.fields["keypoints"].extra) == extra
    written = json.loads((people / "manifest.json").read_text(encoding="utf-8"))
    (entry,) = [f for f in written["fields"] if f["name"] == "keypoints"]
    assert {k: entry[k] for k in extra} == extra
    at = _by_source(ds)
    points = ds.field(at["two.png"], "keypoints")
    assert points.shape == (10, 3)  # two people of 5 points, in annotation order
    assert points[:5].reshape(-1).tolist() == [20, 8, 2, 16, 10, 2, 24, 10, 1, 0, 0, 0, 28, 30, 2]
    assert points[5, :].tolist() == [50, 8, 2]
    assert ds.field(at["none.png"], "keypoints") is None


def test_the_stored_flip_pairs_swap_left_and_right_in_a_flipped_batch(people: Path) -> None:
    ds = datumio.open(people)
    pairs = ds.fields["keypoints"].extra["flip_pairs"]
    mirror = datumio.Transform(size=(H, W), flip=1.0, normalize=False, dtype="uint8", layout="HWC")
    with datumio.Loader(
        str(people),
        2,
        transform=mirror,
        workers=1,
        seed=0,
        epoch_size=4,
        fields=("keypoints",),
        keypoint_pairs=pairs,
        extras=("ids",),
        sampling="natural",
    ) as loader:
        batches = [tuple(np.array(a) for a in batch) for batch in loader]
    at = _by_source(ds)
    person, nobody = at["two.png"], at["none.png"]
    seen = 0
    for _, _, points, count, ids in batches:
        assert (count[ids == nobody] == 0).all()  # a record without the field: no points
        for k in np.flatnonzero(ids == person):
            seen += 1
            assert count[k] == 10
            # the left eye (index 1) is now where the right eye (16, 10 -> 24, 10) was, mirrored
            assert points[k, 1].tolist() == [W - 24, 10, 1]
            assert points[k, 2].tolist() == [W - 16, 10, 2]
    assert seen


def test_the_command_line_tells_a_coco_json_and_stores_the_same(
    instances: Path, tmp_path: Path
) -> None:
    root = instances.parent
    out = tmp_path / "cli.lmdb"
    ingest_cli(
        root / "images", out, "--labels", str(root / "instances.json"), "--workers", "1", check=True
    )
    ds, cli = datumio.open(instances), datumio.open(out)
    assert cli.class_names == ds.class_names and cli.labels.tolist() == ds.labels.tolist()
    for i in range(len(ds)):
        np.testing.assert_array_equal(cli.field(i, "mask"), ds.field(i, "mask"))
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    failed = ingest_cli(
        root / "images",
        tmp_path / "no.lmdb",
        "--from",
        "coco",
        "--labels",
        str(tmp_path / "list.json"),
    )
    assert failed.returncode == 1 and "expected a COCO JSON object" in failed.stderr


def test_a_box_past_the_image_edge_by_a_rounding_is_clipped_not_rejected(tmp_path: Path) -> None:
    src = tmp_path / "images"
    src.mkdir()
    _draw(src / "edge.png", [(50, 40, 64, 48, GREEN)])
    coco = {
        "images": [_image(1, "edge.png")],
        "annotations": [_ann(1, 1, 3, [50.0, -0.4, 14.6, 48.5])],  # 0.6 right, 0.4 up/down
        "categories": CATEGORIES,
    }
    (tmp_path / "edge.json").write_text(json.dumps(coco), encoding="utf-8")
    report = from_coco(src, tmp_path / "edge.json", tmp_path / "edge.lmdb", workers=1)
    assert report.rejects == []
    boxes = datumio.open(tmp_path / "edge.lmdb").field(0, "boxes")
    assert np.allclose(np.asarray(boxes.boxes), [[50, 0, W, H]])
