"""``datumio.Writer``: a dataset written from code, by the ingest engine, on real files."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from builders import Drawing, build_dataset
from PIL import Image

import datumio
from datumio.errors import BadInputError, IngestError, OptionError

DRAWING = Drawing({"cat": 5, "dog": 3, "eel": 2}, size=range(12, 30), fmt="jpg")


def _records(path: Path) -> list[tuple[bytes, int, tuple[int, int, int]]]:
    ds = datumio.open(path)
    return [ds.stored(i) for i in range(len(ds))]


def _leftovers(out: Path) -> list[str]:
    """What is beside OUT: the dataset, its temporaries, its lock."""
    return sorted(n for n in os.listdir(out.parent) if n.lstrip(".").startswith(out.name))


@pytest.mark.parametrize("given", ["path", "bytes"])
@pytest.mark.parametrize("suffix", [".lmdb", ".h5"])
def test_a_writer_dataset_equals_an_ingest_of_the_same_images(
    tmp_path: Path, given: str, suffix: str
) -> None:
    src = DRAWING.draw(tmp_path / "src")
    ingested = build_dataset(src, tmp_path / f"ingested{suffix}", shard_records=4)
    out = tmp_path / f"written{suffix}"
    with datumio.Writer(out, workers=2, shard_records=4) as writer:
        for _, name, _, rel in DRAWING.files():
            path = src / rel
            writer.add(path if given == "path" else path.read_bytes(), name, name=rel)
    assert writer.report is not None and writer.report.rejects == []
    a, b = datumio.open(ingested), datumio.open(out)
    assert a.class_names == b.class_names == ["cat", "dog", "eel"]
    assert np.array_equal(a.labels, b.labels)
    assert _records(ingested) == _records(out)  # payload, label, shape of every record
    assert [a.source(i) for i in range(len(a))] == [b.source(i) for i in range(len(b))]
    assert len(b.manifest.shards) == 3 and b.manifest.ingest is not None
    assert b.manifest.ingest.input == "code"


def test_an_exception_inside_the_with_block_leaves_nothing_at_out(tmp_path: Path) -> None:
    out = tmp_path / "out.lmdb"
    with (
        pytest.raises(RuntimeError, match="boom"),
        datumio.Writer(out, workers=2, shard_records=2) as writer,
    ):
        for k in range(7):  # three shards are written (or being written) by now
            writer.add(np.full((8, 8, 3), k, np.uint8), k % 2)
        raise RuntimeError("boom")
    assert _leftovers(out) in ([], [".out.lmdb.lock"])
    assert not out.exists()


def test_a_wrong_image_type_is_a_type_error_and_publishes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.lmdb"
    with pytest.raises(ValueError, match="uint8 HxW or HxWxC"), datumio.Writer(out) as writer:
        writer.add(np.zeros((4, 4, 3), np.float32), 0)
    with (
        pytest.raises(TypeError, match="encoded bytes, a uint8 array or a path"),
        datumio.Writer(out) as writer,
    ):
        writer.add(12345, 0)  # type: ignore[arg-type]
    assert not out.exists()


def test_arrays_are_kept_losslessly_grey_rgb_and_rgba(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (7, 5), dtype=np.uint8)
    rgba = np.dstack([rgb, np.full((9, 13), 255, np.uint8)])
    out = tmp_path / "out.lmdb"
    with datumio.Writer(out, workers=1) as writer:
        writer.add(rgb, "a")
        writer.add(grey, "b")
        writer.add(rgba, "a")
        writer.add(grey[:, :, None], "b")
    ds = datumio.open(out)
    assert ds.class_names == ["a", "b"] and ds.labels.tolist() == [0, 1, 0, 1]
    assert np.array_equal(ds.image(0), rgb)
    assert np.array_equal(ds.image(1), np.repeat(grey[:, :, None], 3, axis=2))
    assert np.array_equal(ds.image(2), rgb)  # opaque alpha over any background
    assert ds.manifest.stats is not None
    assert ds.manifest.stats.source_formats == {"array": 4}


def test_encode_and_resize_apply_to_samples_as_to_files(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    image = np.zeros((40, 80, 3), np.uint8)
    image[10:30, 20:60] = 255
    with datumio.Writer(out, encode="jpeg", short_side=20, workers=1) as writer:
        writer.add(image, 0, boxes=[[20, 10, 60, 30]])
    ds = datumio.open(out)
    assert ds.encoding == "jpeg" and ds.image(0).shape == (20, 40, 3)
    boxes = ds.record(0)["boxes"]
    assert np.allclose(np.asarray(boxes.boxes), [[10, 5, 30, 15]])


def test_fields_declared_and_inferred_with_first_appearance_vocabularies(tmp_path: Path) -> None:
    out = tmp_path / "out.lmdb"
    mask = np.zeros((6, 8), np.uint8)
    mask[2:4, 3:6] = 2
    with datumio.Writer(out, fields={"score": "float"}, shard_records=2, workers=2) as writer:
        for k in range(5):
            writer.add(
                np.full((6, 8, 3), 10 * k, np.uint8),
                k % 2,
                score=k,  # declared float, given as int
                tags=[["zebra"], ["apple", "zebra"], []][k % 3],
                emb=np.arange(3, dtype=np.float32) + k,
                seg=mask,
                note=f"sample {k}",
            )
    ds = datumio.open(out)
    types = {name: spec.type for name, spec in ds.fields.items()}
    assert types == {
        "score": "float",
        "tags": "multilabel",
        "emb": "array",
        "seg": "mask",
        "note": "text",
    }
    assert ds.fields["tags"].vocabulary == ("zebra", "apple")
    assert ds.field(1, "tags").tolist() == [0, 1]
    assert ds.field(3, "score") == 3.0 and ds.field(4, "note") == "sample 4"
    assert np.array_equal(ds.field(2, "emb"), np.arange(3, dtype=np.float32) + 2)
    assert np.array_equal(ds.field(0, "seg"), mask)


def test_a_field_first_seen_after_the_first_shard_must_be_declared(tmp_path: Path) -> None:
    out = tmp_path / "out.lmdb"
    with (
        pytest.raises(IngestError, match=r"field 'late'.*declare its type"),
        datumio.Writer(out, shard_records=2, workers=1) as writer,
    ):
        for k in range(4):
            extra = {"late": 1} if k == 3 else {}
            writer.add(np.zeros((4, 4), np.uint8), 0, **extra)
    assert not out.exists()


def test_bad_samples_are_rejects_with_reasons_or_fail_the_run(tmp_path: Path) -> None:
    png = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(png, format="PNG")
    out = tmp_path / "out.lmdb"
    with datumio.Writer(out, class_names=["a", "b"], workers=1) as writer:
        writer.add(png.getvalue(), "a")
        writer.add(png.getvalue()[:20], "b", name="cut.png")
        writer.add(png.getvalue(), "c", name="unknown")
        writer.add(png.getvalue(), 1, boxes=[[0, 0, 9, 9]], name="box")
        writer.add(tmp_path / "missing.png", 0)
    report = writer.report
    assert report is not None and report.manifest.num_records == 1
    reasons = {r.path: r.reason for r in report.rejects}
    assert reasons == {
        "cut.png": "truncated",
        "unknown": "unknown class",
        "box": "box outside the image",
        str(tmp_path / "missing.png"): "unreadable",
    }
    strict = tmp_path / "strict.lmdb"
    with (
        pytest.raises(BadInputError, match=r"cut\.png: truncated"),
        datumio.Writer(strict, on_error="raise", workers=1) as writer,
    ):
        writer.add(png.getvalue(), 0)
        writer.add(png.getvalue()[:20], 0, name="cut.png")
    assert not strict.exists()


def test_groups_and_ids_and_options_that_mean_nothing_here(tmp_path: Path) -> None:
    out = tmp_path / "out.lmdb"
    with datumio.Writer(out, workers=1) as writer:
        for k in range(6):
            writer.add(np.zeros((4, 4), np.uint8), k % 3, group=f"patient{k // 2}")
    ds = datumio.open(out)
    assert ds.class_names == ["0", "1", "2"]
    assert ds.groups is not None and ds.groups.tolist() == [0, 0, 1, 1, 2, 2]
    assert ds.manifest.groups is not None
    assert ds.manifest.groups.names == ("patient0", "patient1", "patient2")
    with (
        pytest.raises(ValueError, match="give every sample a group, or none"),
        datumio.Writer(tmp_path / "mixed.lmdb") as writer,
    ):
        writer.add(np.zeros((4, 4), np.uint8), 0, group=1)
        writer.add(np.zeros((4, 4), np.uint8), 0)
    for wrong in ({"append": True}, {"resume": True}, {"labels_file": "x.csv"}):
        with pytest.raises(OptionError):
            datumio.Writer(tmp_path / "x.lmdb", **wrong)  # type: ignore[arg-type]
    with pytest.raises(IngestError, match="already exists"):
        datumio.Writer(out).close()


@pytest.mark.parametrize("suffix", [".lmdb", ".h5"])
def test_shuffle_moves_the_records_into_a_seeded_order_with_everything_they_carry(
    tmp_path: Path, suffix: str
) -> None:
    def write(out: Path, **options: object) -> datumio.Dataset:
        with datumio.Writer(out, shard_records=3, workers=2, **options) as writer:  # type: ignore[arg-type]
            for k in range(10):
                writer.add(
                    np.full((4 + k, 5, 3), 20 * k, np.uint8),
                    f"c{k % 3}",
                    group=k // 2,
                    name=f"n{k}",
                    rank=k,
                    tags=[f"t{k % 4}"] if k % 5 else [],
                )
        return datumio.open(out)

    plain = write(tmp_path / f"plain{suffix}")
    mixed = write(tmp_path / f"mixed{suffix}", shuffle=True, seed=3)
    again = write(tmp_path / f"again{suffix}", shuffle=True, seed=3)
    order = [int(mixed.source(i)[1:]) for i in range(len(mixed))]
    assert sorted(order) == list(range(10)) and order != list(range(10))
    assert order == [int(again.source(i)[1:]) for i in range(len(again))]
    assert mixed.groups is not None and plain.groups is not None
    for i, k in enumerate(order):  # every record carries its own image, label, group, fields
        assert np.array_equal(mixed.image(i), plain.image(k))
        assert mixed.labels[i] == plain.labels[k] and mixed.groups[i] == plain.groups[k]
        assert mixed.field(i, "rank") == k
        assert mixed.record(i)["tags"].tolist() == plain.record(k)["tags"].tolist()
    assert np.array_equal(np.sort(mixed.class_ids), np.sort(plain.class_ids))
    assert [
        mixed.class_ids[mixed.class_offsets[c] : mixed.class_offsets[c + 1]].size for c in range(3)
    ] == [4, 3, 3]
    assert mixed.manifest.stats == plain.manifest.stats
    assert sorted(os.listdir(tmp_path / f"mixed{suffix}" / "shards")) == sorted(
        os.listdir(tmp_path / f"plain{suffix}" / "shards")
    )
    assert datumio.open(tmp_path / f"mixed{suffix}").manifest.num_records == 10


def test_samples_given_a_split_are_stored_as_split_views(tmp_path: Path) -> None:
    out = tmp_path / "out.lmdb"
    with datumio.Writer(out, shard_records=4, workers=2) as writer:
        for k in range(20):
            split = None if k == 19 else ("val" if k % 4 == 0 else "train")
            writer.add(np.full((4, 4), k, np.uint8), k % 2, name=f"n{k}", split=split)
    whole = datumio.open(out)
    assert whole.split_names == ("val", "train")
    val = datumio.open(out, split="val")
    assert [val.source(i) for i in range(len(val))] == ["n0", "n4", "n8", "n12", "n16"]
    assert val.labels.tolist() == [0] * 5 and val.counts.tolist() == [5, 0]
    train = datumio.open(out, split="train")
    assert len(train) == 14 and train.counts.tolist() == [5, 9]  # n19 is in no split


def _segments() -> list[str]:
    """This process's ingest segments in /dev/shm."""
    return [n for n in os.listdir("/dev/shm") if n.startswith(f"datumio_{os.getpid()}_")]


def test_arrays_reach_the_workers_through_shared_memory_that_is_then_unlinked(
    tmp_path: Path,
) -> None:
    from datumio.ingest.shared_images import attach, share

    images = [np.arange(60, dtype=np.uint8).reshape(4, 5, 3), b"png", np.ones((3, 7), np.uint8)]
    made = share(images)
    assert made is not None
    shared, segment = made
    assert sorted(shared.places) == [0, 2] and shared.name in _segments()
    arrays, mapped = attach(shared)  # as a worker maps it
    assert np.array_equal(arrays[0], images[0]) and np.array_equal(arrays[2], images[2])
    arrays.clear()
    mapped.close()
    segment.unlink()
    segment.close()
    assert _segments() == []
    with datumio.Writer(tmp_path / "ok.lmdb", shard_records=2, workers=2) as writer:
        for k in range(9):
            writer.add(np.full((6, 6, 3), k, np.uint8), k % 2)
    assert _segments() == []
    assert [int(datumio.open(tmp_path / "ok.lmdb").image(k)[0, 0, 0]) for k in range(9)] == list(
        range(9)
    )
    with (
        pytest.raises(RuntimeError, match="stop"),
        datumio.Writer(tmp_path / "no.lmdb", shard_records=2, workers=2) as writer,
    ):
        for k in range(9):
            writer.add(np.full((6, 6, 3), k, np.uint8), k % 2)
        raise RuntimeError("stop")
    assert _segments() == [] and not (tmp_path / "no.lmdb").exists()
