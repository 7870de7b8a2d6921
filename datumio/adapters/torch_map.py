"""A map-style PyTorch ``Dataset`` over a datumio dataset, and the collate of its samples.

For a training loop that keeps ``torch.utils.data.DataLoader`` (its workers, its sampler,
its batching) and wants the records decoded and augmented the way a :class:`datumio.Loader`
does it:

.. code-block:: python

    from torch.utils.data import DataLoader
    from datumio.adapters.torch import MapDataset, TorchSampler

    ds = MapDataset("out.lmdb", datumio.Transform(size=(224, 224), flip=0.5))
    batches = DataLoader(ds, batch_size=64, sampler=TorchSampler(ds), num_workers=4)

Each sample goes through the same per-record entry point as the Loader's workers
(:func:`datumio.loader.sample.transform_sample`, with the Transform resolved against the
dataset's statistics as the Loader resolves it; fields through
:func:`datumio.loader.fields.write_sample`), so sizes, dtype, layout and normalisation are
the Loader's, and an outside pipeline (``Transform(pipeline=...)``) runs as it runs there.

Thread/fork/pickle: a ``MapDataset`` pickles as its dataset's path, split and options (the
:class:`~datumio.Dataset` rules) and opens shards lazily in the process that reads, so each
``DataLoader`` worker opens its own (a forked worker drops the handles it inherited). One
``MapDataset`` is not meant to be read by several threads at once.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from datumio.adapters._install import missing
from datumio.augment.geometry import Affine
from datumio.augment.seeds import sample_rng
from datumio.augment.spec import Transform
from datumio.checks import BadValue, non_negative_int
from datumio.errors import OptionError
from datumio.loader.defaults import loader_dataset, resolved_transform
from datumio.loader.fields import FieldArray, Placed, plan_fields, write_sample
from datumio.loader.options import LoaderOptions
from datumio.loader.sample import transform_sample
from datumio.shards.dataset import Dataset

try:
    import torch
    from torch.utils.data import Dataset as TorchDataset
    from torch.utils.data import default_collate
except ImportError as exc:
    raise missing("datumio.adapters.torch", "torch", exc) from exc

__all__ = ["MapDataset", "Sample", "collate"]

#: One sample: ``(image, label)``, or with ``fields`` a dict of tensors (and the label).
Sample = tuple[torch.Tensor, int] | dict[str, torch.Tensor | int]
#: A batch of :func:`collate`: ``[images, labels]`` (``default_collate``'s list), or a dict.
Batch = list[torch.Tensor] | dict[str, torch.Tensor]
#: The value in the padded rows of a boxes field's ``NAME_classes`` (the Loader's).
_NO_CLASS = -1


class MapDataset(TorchDataset[Sample]):
    """A ``torch.utils.data.Dataset`` of a datumio dataset's records, decoded and augmented.

    ``ds[i]`` reads record ``i`` (of the split), decodes it and applies the Transform
    exactly as the Loader's workers do, with random draws keyed by ``(seed, epoch, i)``:
    the same tensors in any process and on any number of ``DataLoader`` workers, other
    draws after :meth:`set_epoch` moves to another epoch. A record that does not read or
    decode raises (the Loader would replace it; a map-style dataset answers for ``i``).

    Without ``fields`` a sample is ``(image, label)``. With ``fields`` it is a dict:
    ``image``, ``label`` and each field as the Loader's batches hold it, for one sample:
    an int or float field a scalar tensor, a multilabel field the multi-hot uint8 row over
    its ids, a mask the uint8 (H, W) mask at the output size, and an array, boxes or
    keypoints field the tensor of its own rows (``(n,)``, ``(n, 4)``, ``(n, 3)``; boxes
    and keypoints after the augmentation) with ``NAME_count`` (and ``NAME_classes`` for
    boxes with classes). Batch such dicts with :func:`collate`.

    Args:
        path_or_dataset: a dataset directory (or URL), or a :class:`~datumio.Dataset`.
        transform: what each record goes through; None: the Loader's default (the stored
            pixels as uint8 HWC when every record has one size, else shorter side 224 and a
            224x224 centre crop), so the default collate works on a dataset of mixed sizes.
        split: the stored split to read (``"train"``, ``"val"``, ...); None: every record.
        fields: record fields each sample carries (its dict), in this order.
        seed: the run seed of every random draw.

    Raises:
        OptionError: a bad option (naming it), no such split or field, a dataset without
            images, a Transform with ``batch_zmuv`` (it needs a whole batch).
    """

    def __init__(
        self,
        path_or_dataset: Dataset | str | os.PathLike[str],
        transform: Transform | None = None,
        *,
        split: str | None = None,
        fields: Sequence[str] = (),
        seed: int = 0,
    ) -> None:
        # The Loader's options for one sample: the same checks and field defaults.
        self.options = LoaderOptions(batch_size=1, split=split, fields=fields, seed=seed, workers=1)
        #: The records read (a split view when ``split`` is given).
        self.dataset = loader_dataset(path_or_dataset, self.options.split)
        if not self.dataset.has_images:
            raise OptionError(
                f"MapDataset reads images, but {self.dataset.path} has none (its records are a "
                "label and fields): read them with Dataset.field, or batch them with Loader"
            )
        #: The Transform every sample goes through, resolved against the dataset's statistics.
        self.transform, self.channels = resolved_transform(self.dataset, transform, self.options)
        if self.transform.batch_zmuv:
            raise OptionError(
                "MapDataset(transform=Transform(batch_zmuv=True)): a map-style dataset gives one "
                "sample at a time; use sample_zmuv=True, or the Loader for batch_zmuv"
            )
        self.plan = plan_fields(self.dataset.fields, self.options.fields, self.transform.size)
        self._epoch = 0

    @property
    def seed(self) -> int:
        """The run seed of every random draw."""
        return self.options.seed

    @property
    def epoch(self) -> int:
        """The epoch the random draws are keyed by (:meth:`set_epoch`)."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Key the random draws by ``epoch`` from now on.

        Call it before iterating a ``DataLoader`` for the epoch (workers get a copy of the
        dataset when an iteration starts; ``persistent_workers=True`` keeps the first one).

        Raises:
            OptionError: ``epoch`` is not an int >= 0.
        """
        try:
            self._epoch = non_negative_int("epoch", epoch)
        except BadValue as exc:
            raise OptionError(f"MapDataset.set_epoch: {exc}") from None

    def __len__(self) -> int:
        """Records of the dataset (of the split)."""
        return len(self.dataset)

    def __getitem__(self, i: int) -> Sample:
        """Record ``i`` decoded and transformed: ``(image, label)``, or a dict with fields.

        Raises:
            IndexError: ``i`` outside the dataset (negative counts from the end).
            RecordError: the record fails its checks; DecodeError: it does not decode.
            TransformError: the Transform's ``user_fn`` failed.
        """
        index = operator.index(i)
        if index < 0:
            index += len(self)
        ds, spec = self.dataset, self.transform
        payload, label, shape = ds.stored(index)
        out = np.empty(spec.output_shape(self.channels), spec.dtype)
        rng = sample_rng(self.seed, self._epoch, index)
        values = [ds.field(index, s.name) for s in self.plan.specs]
        m = transform_sample(
            spec,
            payload,
            rng,
            out,
            encoding=ds.encoding,
            shape=shape,
            background=ds.background,
            plan=self.plan,
            label=label,
            fields=lambda: values,
        )
        image = torch.from_numpy(out)
        if not self.plan.specs:
            return image, label
        return {"image": image, "label": label, **self._fields(values, m)}

    def _fields(self, values: list[Any], m: Affine | Placed | None) -> dict[str, torch.Tensor]:
        """The record's field ``values`` as the Loader writes them (through the map ``m``, or
        as a pipeline placed them), each variable-length entry cut to its own rows."""
        arrays = self.plan.arrays
        views = [np.zeros((1, *a.shape), a.dtype) for a in arrays]
        write_sample(self.plan, values, m, views, 0)
        counts = {a.name: int(v[0]) for a, v in zip(arrays, views, strict=True) if _is_count(a)}
        sample = {}
        for a, view in zip(arrays, views, strict=True):
            count = counts.get(_count_name(a.name, counts)) if not _is_count(a) else None
            row = view[0] if count is None else view[0][:count]
            sample[a.name] = torch.from_numpy(np.array(row))  # 0-d stays 0-d
        return sample


def _is_count(array: FieldArray) -> bool:
    """Whether ``array`` is a field's ``NAME_count`` (the only int32 scalars a field adds)."""
    return array.shape == () and array.dtype == "int32"


def _count_name(name: str, counts: Mapping[str, Any]) -> str:
    """The ``NAME_count`` entry that says how many rows of entry ``name`` are real
    (``boxes`` and ``boxes_classes``: ``boxes_count``); "" for a fixed-shape entry."""
    if f"{name}_count" in counts:
        return f"{name}_count"
    base = name.removesuffix("_classes")
    return f"{base}_count" if base != name and f"{base}_count" in counts else ""


def collate(samples: Sequence[Sample]) -> Batch:
    """Batch :class:`MapDataset` samples the way the Loader's batches are laid out.

    ``(image, label)`` samples go through ``torch.utils.data.default_collate`` (a list
    ``[images, labels]``). Dict samples: fixed-shape entries (image, label, int, float,
    multilabel and mask fields, the ``NAME_count``) are stacked; a variable-length entry
    (an array, boxes or keypoints field, and ``NAME_classes``) is padded to the longest of
    the batch, rows past a sample's ``NAME_count`` 0 (classes -1), as in a Loader batch
    (which pads to the dataset's longest instead).

    Use it as ``DataLoader(MapDataset(path, fields=("boxes",)), collate_fn=collate)``.
    """
    first = samples[0]
    if not isinstance(first, Mapping):
        return cast(list[torch.Tensor], default_collate(list(samples)))
    dicts = cast(Sequence[Mapping[str, Any]], samples)
    batch: dict[str, torch.Tensor] = {}
    for name in first:
        entries = [s[name] for s in dicts]
        counted = _count_name(name, first) if not name.endswith("_count") else ""
        if not counted:
            batch[name] = default_collate(entries)
            continue
        batch[name] = _padded(entries, _NO_CLASS if counted != f"{name}_count" else 0)
    return batch


def _padded(rows: Sequence[torch.Tensor], fill: int) -> torch.Tensor:
    """``rows`` (each ``(n_k, ...)``) in one ``(B, max n_k, ...)`` tensor, ``fill`` after."""
    longest = max(len(r) for r in rows)
    out = torch.full((len(rows), longest, *rows[0].shape[1:]), fill, dtype=rows[0].dtype)
    for k, r in enumerate(rows):
        out[k, : len(r)] = r
    return out
