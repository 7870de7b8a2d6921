"""Options as an editor and mypy see them: names and choices are checked before a run.

Type-checked by tests/typing/test_typed_api.py, never run. ``# E:``/``# N:`` say what
mypy must report on that line; every other line must pass.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

import datumio
from datumio import IngestOptions, LoaderOptions, SamplerOptions, Transform
from datumio.loader import LoaderKeywords
from datumio.sampling import MODES, Mode, SamplerKeywords

labels = np.zeros(10, dtype=np.int64)


def wrong_names() -> None:
    datumio.Loader("x", 64, workerz=2)  # E: Unexpected keyword argument "workerz" for "Loader"; did you mean "workers"?
    datumio.Loader("x", 64, epoch_sise=100)  # E: Unexpected keyword argument "epoch_sise"
    datumio.Sampler(labels, seeds=1)  # E: Unexpected keyword argument "seeds"
    datumio.open("x", max_open_shard=3)  # E: Unexpected keyword argument "max_open_shard"
    datumio.ingest("a", "b.lmdb", workerz=2)  # E: Unexpected keyword argument "workerz"
    datumio.Writer("b.lmdb", sise=(8, 8))  # E: Unexpected keyword argument "sise" for "Writer"
    datumio.from_huggingface("a", "b.lmdb", colums={})  # E: Unexpected keyword argument "colums"
    datumio.split("b.lmdb", vall=0.1)  # E: Unexpected keyword argument "vall"
    Transform(size=8, layuot="HWC")  # E: Unexpected keyword argument "layuot"


def wrong_choices() -> None:
    datumio.Loader("x", 64, sampling=3)  # E: Argument "sampling" to "Loader" has incompatible type "Literal[3]"
    datumio.Loader("x", 64, sampling="balancd")  # E: incompatible type "Literal['balancd']"
    datumio.Loader("x", 64, decode="gpu")  # E: Argument "decode" to "Loader" has incompatible type
    datumio.Loader("x", 64, start_method="thread")  # E: Argument "start_method" to "Loader"
    datumio.Loader("x", 64, extras=("idz",))  # E: Argument "extras" to "Loader"
    datumio.Loader("x", 64, workers="2")  # E: Argument "workers" to "Loader" has incompatible type "str"
    datumio.Sampler(labels, mode="balancd")  # E: Argument "mode" to "Sampler" has incompatible type
    datumio.Sampler(labels, "balancd")  # E: Argument 2 to "Sampler" has incompatible type
    datumio.open("x", verify_crc="yes")  # E: Argument "verify_crc" to "open_dataset"
    datumio.open("x", split=1)  # E: Argument "split" to "open_dataset" has incompatible type "int"
    datumio.ingest("a", "b.lmdb", encode="gif")  # E: Argument "encode" to "ingest"
    datumio.ingest("a", "b.lmdb", on_error="ignore")  # E: Argument "on_error" to "ingest"
    datumio.ingest("a", "b.lmdb", format="zip")  # E: Argument "format" to "ingest"
    datumio.ingest("a", "b.lmdb", importer="tfrecord")  # E: Argument "importer" to "ingest"
    datumio.Writer("b.lmdb", encode="gif")  # E: Argument "encode" to "Writer"
    Transform(size=8, layout="HCW")  # E: Argument "layout" to "Transform" has incompatible type
    Transform(size=8, dtype="float16")  # E: Argument "dtype" to "Transform"
    Transform(size=8, resample="lanczos")  # E: Argument "resample" to "Transform"
    Transform(size=8, backend="cuda")  # E: Argument "backend" to "Transform"
    Transform(size=8, fill_mode="mirror")  # E: Argument "fill_mode" to "Transform"
    LoaderOptions(batch_size=8, decode="gpu")  # E: Argument "decode" to "LoaderOptions"
    SamplerOptions(mode="even")  # E: Argument "mode" to "SamplerOptions"
    IngestOptions(encode="gif")  # E: Argument "encode" to "IngestOptions"


def a_plain_str_is_not_a_choice(name: str) -> None:
    # Text from a config file or argv is checked at run time; narrow it (``if name in
    # MODES``) or annotate it with the Literal to have it checked here.
    datumio.Sampler(labels, name)  # E: Argument 2 to "Sampler" has incompatible type "str"
    if name in MODES:
        reveal_type(name)  # N: Revealed type is "Literal['natural'] | Literal['balanced'] | Literal['weights']
        datumio.Sampler(labels, name)


def typed_keywords() -> None:
    kwargs: LoaderKeywords = {"workers": 2, "sampling": "natural"}
    datumio.Loader("x", 64, **kwargs)
    bad: LoaderKeywords = {"workerz": 2}  # E: Extra key "workerz" for TypedDict "LoaderKeywords"
    sampler: SamplerKeywords = {"mode": "power", "power": 0.5}
    datumio.Sampler(labels, **sampler)
    reveal_type(LoaderOptions(batch_size=8).decode)  # N: Revealed type is "Literal['worker'] | Literal['device']"
    reveal_type(MODES)  # N: Revealed type is "tuple[Literal['natural'] | Literal['balanced'] |


def right_calls(mode: Mode, weights: dict[str, float], ids: dict[int, float]) -> None:
    datumio.Loader("x", 64)
    datumio.Loader("x", batch_size=64, workers=2, prefetch=4, seed=1, copy=True)
    datumio.Loader("x", options=LoaderOptions(batch_size=8, decode="device"), workers=1)
    datumio.Loader("x", 64, sampling="weights", weights={"cat": 2.0, "dog": 1.0})
    datumio.Loader("x", 64, sampling=mode, epoch_size=1000, locality=4, lockstep=True)
    datumio.Loader("x", 64, extras=("ids", "groups"), fields=("boxes",), start_method="spawn")
    datumio.Loader("x", 64, keypoint_pairs=((0, 1),), batch_timeout_s=30, max_open_shards=64)
    datumio.Loader("x", 64, extras=["ids"], fields=["boxes", "tags"], keypoint_pairs=[(0, 1)])
    datumio.Sampler(labels)
    datumio.Sampler(labels, "power", power=0.5, seed=1)
    datumio.Sampler(labels, mode="weights", weights=weights)
    datumio.Sampler(labels, weights=ids, stratified=True, batch_size=8, rank=0, world_size=2)
    datumio.Sampler(labels, options=SamplerOptions(mode="natural"), pad=True)
    datumio.open("x")
    datumio.open("x", verify_crc=False, background=(0, 0, 0), max_open_shards=8)
    datumio.open("x", split="val").with_split(None).whole()
    datumio.Loader("x", 64, split="train", sampling="balanced")
    datumio.open("s3://b/x.lmdb", cache_dir="cache", cache_limit=2**30, storage_options={})
    datumio.ingest("a", "b.lmdb")
    datumio.ingest("a", "b.lmdb", IngestOptions(size=(224, 224)), progress=None)
    datumio.ingest("a", "b.lmdb", size=(224, 224), encode="jpeg", workers=2, on_error="raise")
    datumio.ingest("a", "b.lmdb", executor="dask", wait=None, class_names=("cat", "dog"))
    datumio.ingest("a", "b.lmdb", class_names=["cat", "dog"])
    datumio.ingest("a", "b.lmdb", executor=ThreadPoolExecutor(2), format="hdf5")
    datumio.ingest(["a.tar", "b.tar"], "b.lmdb", importer="webdataset", columns={"label": "cls"})
    datumio.ingest("a", "b.lmdb", importer="coco", labels_file="instances.json", splits=["val"])
    with datumio.Writer("b.lmdb", class_names=["cat"], fields={"box": "boxes"}, shuffle=True) as w:
        w.add(np.zeros((4, 4, 3), np.uint8), "cat", group=1, split="train", box=[[0, 0, 2, 2]])
        w.add(b"...", 0, name="x")
    reveal_type(w.report)  # N: Revealed type is "datumio.ingest.report.IngestReport | None"
    datumio.from_webdataset("a-{0..3}.tar", "b.lmdb", workers=1)
    datumio.from_coco("images", "instances.json", "b.lmdb", short_side=256)
    datumio.split("b.lmdb", val=0.1, test=0.1, seed=0)
    Transform(size=224, layout="HWC", dtype="uint8", resample="nearest", backend="pillow")
    Transform(size=(224, 160), fill_mode="edge", flip=0.5, zoom_range=(0.9, 1.1))
