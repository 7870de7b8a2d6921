"""decode="device": workers hand over JPEG bytes and the drawn geometry; the consumer decodes.

Runs on the CPU: the decoder is injected (Pillow here; nvJPEG through torchvision on a GPU),
everything else (slots, parameters, crop/resize/flip/normalise in torch) is the real path.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from builders import Drawing, Slot, build_dataset, draw_file, make_dataset
from PIL import Image

import datumio
from datumio.augment import device, geometry, sample_rng
from datumio.errors import OptionError

torch = pytest.importorskip("torch")

from datumio.adapters.torch import TorchIterable  # noqa: E402

SPEC = datumio.Transform(
    size=(24, 24), crop_scale=(0.08, 1.0), flip=0.5, mean=(120, 110, 100), std=(60, 50, 40)
)


def pil_decoder(datas: list) -> list:
    """What ``torchvision.io.decode_jpeg`` returns: CHW uint8 tensors."""
    out = []
    for data in datas:
        image = Image.open(io.BytesIO(data.numpy().tobytes())).convert("RGB")
        out.append(torch.from_numpy(np.array(image)).permute(2, 0, 1))
    return out


def _textured(slot: Slot, rng: np.random.Generator) -> np.ndarray:
    h, w = slot.height, slot.width
    small = rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC))


#: 18 smooth random textures of 3 classes, each side 40..89 pixels.
TEXTURES = Drawing(
    {"a": 6, "b": 6, "c": 6}, size=range(40, 90), picture=_textured, names="{k}", seed=5
)


@pytest.fixture(scope="module")
def jpeg_dataset(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("device-decode")
    return str(make_dataset(root, TEXTURES, encode="jpeg"))


def _loader(path: str | Path, **kw) -> datumio.Loader:
    opts = {"workers": 2, "transform": SPEC, "seed": 11, "epoch_size": 32, **kw}
    return datumio.Loader(path, 8, **opts)


def test_workers_hand_over_the_record_and_the_cpu_paths_geometry(jpeg_dataset: str) -> None:
    ds = datumio.open(jpeg_dataset)
    with _loader(jpeg_dataset, decode="device", extras=("ids",), copy=True) as loader:
        batches = list(loader)
    assert len(batches) == 4
    position = 0
    for payloads, labels, ids, params in batches:
        assert payloads.dtype == np.uint8 and params.shape == (8, len(device.PARAMS))
        for k in range(len(ids)):
            record = ds.read(int(ids[k]))
            n = int(params[k, 0])
            assert bytes(payloads[k, :n]) == record
            h, w, _ = ds.shape(int(ids[k]))
            assert (params[k, 1], params[k, 2]) == (w, h)
            assert labels[k] == ds.labels[ids[k]]
            # the same draws as the CPU path: geometry.plan on the sample's own stream
            m = geometry.plan(SPEC, w, h, sample_rng(11, 0, position)).m
            x0, x1 = m[0, 2], m[0, 0] * 24 + m[0, 2]
            assert params[k, 7] == (x1 < x0)
            assert params[k, 3] == min(x0, x1) and params[k, 5] == max(x0, x1)
            assert 0 <= params[k, 3] < params[k, 5] <= w and 0 <= params[k, 4] < params[k, 6] <= h
            position += 1


def test_device_decoded_batches_match_the_worker_path(jpeg_dataset: str) -> None:
    """Same records, same crops and flips, same normalisation. Where the crop shrinks by
    less than 2x both paths decode at full size: within a grey level or so (OpenCV's area
    filter against torch's antialiased bilinear, on hard textures). From 2x the worker
    path decodes with JPEG DCT scaling, a different low-pass than torch's antialiased
    resize, so only the geometry is compared there (a mirrored batch is far off)."""
    with _loader(jpeg_dataset) as loader:
        expected = [(b[0].copy(), b[1].copy()) for b in loader]
    with _loader(jpeg_dataset, decode="device", copy=True) as loader:
        params = [b[-1] for b in loader]
    with _loader(jpeg_dataset, decode="device") as loader:
        got = [(x.clone(), y.clone()) for x, y in TorchIterable(loader, decoder=pil_decoder)]
    assert len(got) == len(expected) == len(params) == 4
    std = np.array([60, 50, 40]).reshape(3, 1, 1)
    close = 0
    for (x, y), (ex, ey), p in zip(got, expected, params, strict=True):
        assert x.dtype == torch.float32 and tuple(x.shape) == ex.shape == (8, 3, 24, 24)
        assert x.is_contiguous(memory_format=torch.channels_last)
        np.testing.assert_array_equal(y.numpy(), ey)
        for k in range(8):
            grey = np.abs(x[k].numpy() - ex[k]) * std  # back on the 0-255 scale
            mirrored = np.abs(x[k].numpy()[..., ::-1] - ex[k]) * std
            assert mirrored.mean() > 2 * grey.mean(), (mirrored.mean(), grey.mean())
            if min(p[k, 5] - p[k, 3], p[k, 6] - p[k, 4]) < 2 * 24:
                close += 1
                assert grey.mean() < 1.5 and np.percentile(grey, 99) < 8, grey.mean()
    assert close >= 8


def test_uint8_transform_gives_uint8_in_its_layout(jpeg_dataset: str) -> None:
    spec = datumio.Transform(size=(24, 24), crop_scale=(0.5, 1.0), layout="HWC", dtype="uint8")
    with _loader(jpeg_dataset, transform=spec, decode="device") as loader:
        assert loader.finish is None
        x, _ = next(iter(TorchIterable(loader, decoder=pil_decoder)))
    assert x.dtype == torch.uint8 and tuple(x.shape) == (8, 24, 24, 3)


def test_what_the_device_cannot_do_is_refused_with_the_way_out(
    jpeg_dataset: str, shapes_lmdb: Path
) -> None:
    with pytest.raises(OptionError, match=r"rotation.*decode=\"worker\""):
        _loader(
            jpeg_dataset,
            decode="device",
            transform=datumio.Transform(size=(24, 24), rotation_range=(-10, 10)),
        )
    with pytest.raises(OptionError, match="--encode jpeg"):
        _loader(shapes_lmdb, decode="device")  # PNG records kept as they were
    with pytest.raises(OptionError, match="decode="):
        _loader(jpeg_dataset, decode="gpu")


def test_a_record_too_large_for_its_row_is_replaced_not_fatal(tmp_path) -> None:
    """Rows hold 4x the mean record: one noisy record among flat ones does not fit; it is
    replaced by one of its class, logged and counted, like an unreadable record."""
    flat = Drawing({"flat": 8, "mixed": 8}, size=(64, 64), picture="solid", names="{k}")
    src = flat.draw(tmp_path / "src")
    draw_file(src / "mixed" / "noise.png", (400, 400), seed=1)
    out = build_dataset(src, tmp_path / "o.lmdb", encode="jpeg")
    ds = datumio.open(out)
    sizes = [len(ds.read(i)) for i in range(len(ds))]
    spec = datumio.Transform(size=(4, 4), crop_scale=(0.5, 1.0), normalize=False)
    with datumio.Loader(
        out, 17, transform=spec, decode="device", workers=1, epoch_size=17 * 6, copy=True
    ) as loader:
        row = loader.layout.sample_shape[0]
        assert max(sizes) > row > 4 * np.mean(sizes) - 64
        for _payloads, _, params in loader:
            assert params[:, 0].max() <= row
        assert loader.stats.replaced > 0
