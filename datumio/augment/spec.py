"""The transform spec: plain, frozen, picklable data sent once to every worker."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, get_args

import numpy as np

from datumio.augment import opencv_probe
from datumio.checks import BadValue, Check, apply, choice, optional, probability, refuse
from datumio.errors import OptionError

#: A user hook: ``fn(image HxWxC uint8, rng) -> image of the same shape and dtype``.
UserFn = Callable[[np.ndarray, np.random.Generator], np.ndarray]
#: A normalisation axis as the original datumio took it: None (all), an int or a tuple.
Axis = int | tuple[int, ...] | None

#: The axes of one output sample.
Layout = Literal["HWC", "CHW"]
LAYOUTS: tuple[Layout, ...] = get_args(Layout)
#: The element type of the output.
OutputDtype = Literal["uint8", "float32"]
DTYPES: tuple[OutputDtype, ...] = get_args(OutputDtype)
#: The interpolation of the one geometric resampling.
Resample = Literal["nearest", "bilinear", "bicubic"]
RESAMPLES: tuple[Resample, ...] = get_args(Resample)
#: What lies outside the image (``numpy.pad`` modes).
FillMode = Literal["constant", "edge", "reflect", "symmetric", "wrap"]
FILL_MODES: tuple[FillMode, ...] = get_args(FillMode)
#: Who does the general affine warp, decodes JPEG records and normalises (docs: ``backend``).
Backend = Literal["auto", "pillow", "opencv"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)


#: ``"224"`` or ``"224x160"`` (``x``, ``X`` or ``×``, spaces allowed): text sizes, height first.
_SIZE_TEXT = re.compile(r"\s*(\d+)\s*(?:[xX\u00d7]\s*(\d+)\s*)?")


def _whole(value: Any) -> int | None:
    """``value`` as an int when it is a whole number (224, 224.0, numpy ints), else None."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return int(float(value))
    return None


def parse_size(value: Any, where: str = "Transform(size=...)") -> tuple[int, int]:
    """An output size as (height, width).

    Accepted: an int ``N`` (N x N), a (height, width) pair of whole numbers, or text:
    ``"224"`` (224 x 224) or ``"HxW"`` with the height first, ``"224x160"`` -> (224, 160),
    the order of the tuple. (The ingest CLI's ``--size`` is ``WxH`` text, the way image
    tools write it; in Python every size is (height, width).)

    Raises:
        OptionError: names ``where``, the value and what is accepted.
    """
    height = width = None
    if isinstance(value, str):
        match = _SIZE_TEXT.fullmatch(value)
        if match is not None:
            height, width = int(match[1]), int(match[2] or match[1])
    elif (side := _whole(value)) is not None:
        height = width = side
    else:
        try:
            sides = [_whole(v) for v in value]
        except TypeError:
            sides = []
        if len(sides) == 2:
            height, width = sides
    if height is None or width is None or min(height, width) < 1:
        raise OptionError(
            f"{where}: got {value!r}; give an int N (N x N), a (height, width) pair "
            'or text "HxW" with the height first ("224x160": height 224, width 160), every '
            "side a whole number >= 1"
        )
    return height, width


class SizeField:
    """The ``size`` field of :class:`Transform`: set from an int, text or a pair (parsed by
    :func:`parse_size`), read back as (height, width).

    A data descriptor, so that type checkers see both what the constructor takes
    (``__set__``) and what the attribute holds (``__get__``). The parsed pair lives on the
    instance as ``_size`` and pickles with it.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name
        self._slot = f"_{name}"

    def __get__(self, obj: object, objtype: type | None = None) -> tuple[int, int]:
        if obj is None:
            # Read on the class: no default, so the dataclass makes the field required.
            raise AttributeError(self._name)
        pair: tuple[int, int] = getattr(obj, self._slot)
        return pair

    def __set__(self, obj: object, value: tuple[int, int] | int | str) -> None:
        object.__setattr__(obj, self._slot, parse_size(value))


def _number(name: str, value: Any) -> float:
    """``value`` as a float (NaN and inf included, for the caller's range check).

    Raises:
        OptionError: ``value`` is no number.
    """
    try:
        return float(value)
    except (TypeError, ValueError):
        raise OptionError(f"Transform({name}={value!r}); give a number") from None


def _range(need: str, fits: Callable[[float, float], bool] = lambda lo, hi: True) -> Check:
    """A (low, high) pair of finite numbers, ``low <= high`` and ``fits(low, high)``."""

    def check(name: str, value: Any) -> tuple[float, float]:
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError):
            raise refuse(name, value, "a (low, high) pair") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi and fits(lo, hi)):
            raise refuse(name, value, f"a (low, high) pair with {need}")
        return lo, hi

    return check


def _axis(name: str, value: Any, ndim: int) -> Axis:
    if value is None:
        return None
    axes = (value,) if isinstance(value, int) else tuple(value)
    if not axes or any(not isinstance(a, int) or not -ndim <= a < ndim for a in axes):
        raise OptionError(f"Transform({name}={value!r}); give None, an axis or axes in [0, {ndim})")
    return axes[0] if isinstance(value, int) else tuple(int(a) for a in axes)


@dataclass(frozen=True, kw_only=True)
class Transform:
    """What a worker does to one record before writing it into the batch.

    Order (see ``docs/augment.md``): decode (JPEG draft scaling when the output is at most
    half the stored size) -> ONE geometric resampling: the base view (resize the shorter
    side to ``resize`` and centre-crop to ``size``; or ``keep_scale``; or a random resized
    crop), then zoom / stretch, rotation, shear, translation and flips about the view's
    centre, all composed into one matrix (:mod:`datumio.augment.geometry`) -> photometric
    ops in uint8 (brightness, contrast, saturation, grayscale) -> ``user_fn`` -> dataset
    mean/std, per-sample zero-mean unit-variance -> ``layout``/``dtype`` into the output.
    Per-batch zmuv runs after the whole batch is written (:func:`normalize_batch`).

    Conventions are the original datumio's: angles in degrees, positive rotation and shear
    counter-clockwise, zoom > 1 zooms in, translation (x, y) in output pixels with positive
    x moving the content right and positive y moving it up, flips mirror the final view.

    Thread/fork/pickle: immutable; pickles by value (``user_fn`` must be a top-level,
    picklable function). ``chw_order`` and ``dataset_zmuv`` are aliases folded into
    ``layout`` and ``normalize`` at construction (they then read None).

    Args:
        size: output (height, width); ``output_shape`` of the original API. Also an int
            ``N`` for N x N, or text: ``"224"`` or ``"HxW"`` with the height first
            (``"224x160"`` is 224 high, 160 wide; see :func:`parse_size`).
        resize: shorter side after resizing, before the centre crop. None: the smallest
            resize whose centre crop covers ``size``.
        keep_scale: no resize: centre-crop ``size`` out of the image at its stored scale
            (the original ``output_shape``); pixels outside the image take the fill.
        crop_scale: random resized crop (torchvision ``RandomResizedCrop``): area fraction
            range of the stored image; replaces the resize and centre crop. None: off.
        crop_ratio: aspect-ratio (w/h) range of the random resized crop, log-uniform.
        flip: probability of a horizontal flip (0 to 1).
        do_flip_lr: flip left-right half of the time (the original's flag; not with flip).
        do_flip_ud: flip up-down half of the time.
        zoom_range: (low, high) zoom, drawn log-uniform; > 1 zooms in.
        allow_stretch: False: one zoom for x and y; True: x and y zooms drawn independently;
            a number s > 1: zoom times a stretch drawn log-uniform in [1/s, s] for x, divided
            by it for y.
        rotation_range: (low, high) degrees, counter-clockwise.
        shear_range: (low, high) degrees, counter-clockwise.
        translation_range: (low, high) output pixels, drawn separately for x and y.
        fill_mode: outside the image: ``constant`` (``fill_value``), ``edge``, ``reflect``,
            ``symmetric`` or ``wrap`` (``numpy.pad`` modes).
        fill_value: 0-255 grey level or per-channel tuple for ``constant``.
        brightness_range, contrast_range, saturation_range: (low, high) enhancement factors
            (Pillow ``ImageEnhance`` semantics: 1 keeps the image), drawn uniformly.
        grayscale: probability of turning the image grey (channels kept).
        normalize: dataset zero-mean unit-variance: float32 ``(pixel - mean) / std``.
        mean: per-channel mean on the 0-255 scale; None takes the ingest stats.
        std: per-channel standard deviation on the 0-255 scale; None: ingest stats.
        sample_zmuv: each sample minus its mean, over its std (+1e-12), over ``sample_axis``.
        sample_axis: axes of the HxWxC sample (None: all; (0, 1): per channel).
        batch_zmuv: the batch minus its mean, over its std, over ``batch_axis``.
        batch_axis: axes of the NxHxWxC batch (None: all; 0: per pixel; (0, 1, 2): per
            channel); axes are HWC-ordered whatever ``layout`` is, as in the original.
        layout: ``"CHW"`` or ``"HWC"``; ``chw_order`` True/False is the original's name.
        dtype: ``"float32"`` or ``"uint8"`` (uint8 is never normalised).
        resample: ``"bilinear"`` (antialiased when shrinking), ``"nearest"`` or ``"bicubic"``.
        backend: the general affine warp: ``"auto"`` (OpenCV's ``warpAffine`` for bilinear
            and bicubic when ``datumio[opencv]`` is installed, else Pillow), ``"pillow"`` or
            ``"opencv"``.
            Pixels differ slightly between the two; pin one for bit-identical runs across
            installs.
        user_fn: optional hook applied to the uint8 output-sized image.
        pipeline: an outside augmentation pipeline that owns the geometry
            (``docs/augment.md``, "Your own pipeline"): a torchvision ``transforms.v2``
            transform, an albumentations ``Compose``, or ``fn(record, rng) -> record`` on
            the decoded record (``{"image": HxWxC uint8, "label": int, FIELD: ...}``). It
            gets the whole stored image and its boxes, masks and keypoints, and must return
            the image at ``size``; datumio's photometric ops, ``user_fn`` and normalisation
            follow. Not with datumio's own geometry (resize, crops, zoom, rotation, shear,
            translation, flips).
    """

    #: (height, width) once built; the constructor also takes an int N or text (:class:`SizeField`).
    size: SizeField = SizeField()
    resize: int | None = None
    flip: float = 0.0
    normalize: bool = True
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    layout: Layout = "CHW"
    dtype: OutputDtype = "float32"
    resample: Resample = "bilinear"
    backend: Backend = "auto"
    user_fn: UserFn | None = None
    pipeline: Any = None
    keep_scale: bool = False
    crop_scale: tuple[float, float] | None = None
    crop_ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    zoom_range: tuple[float, float] = (1.0, 1.0)
    allow_stretch: bool | float = False
    rotation_range: tuple[float, float] = (0.0, 0.0)
    shear_range: tuple[float, float] = (0.0, 0.0)
    translation_range: tuple[float, float] = (0.0, 0.0)
    do_flip_lr: bool = False
    do_flip_ud: bool = False
    fill_mode: FillMode = "constant"
    fill_value: int | tuple[int, ...] = 0
    brightness_range: tuple[float, float] = (1.0, 1.0)
    contrast_range: tuple[float, float] = (1.0, 1.0)
    saturation_range: tuple[float, float] = (1.0, 1.0)
    grayscale: float = 0.0
    sample_zmuv: bool = False
    sample_axis: Axis = None
    batch_zmuv: bool = False
    batch_axis: Axis = None
    dataset_zmuv: bool | None = None
    chw_order: bool | None = None

    def __post_init__(self) -> None:
        put = object.__setattr__
        if self.chw_order is not None:
            put(self, "layout", "CHW" if self.chw_order else "HWC")
            put(self, "chw_order", None)
        if self.dataset_zmuv is not None:
            put(self, "normalize", bool(self.dataset_zmuv))
            put(self, "dataset_zmuv", None)
        apply(self, _CHECKS, error=_refused)
        self._check_base(self.size)  # parsed as it was set (SizeField)
        if self.flip > 0 and self.do_flip_lr:
            raise OptionError("Transform(flip=..., do_flip_lr=True): give one of the two")
        stretch = self.allow_stretch
        if not isinstance(stretch, bool) and not 0 < _number("allow_stretch", stretch) < math.inf:
            raise OptionError(f"Transform(allow_stretch={stretch}); give a bool or a factor > 0")
        fill = self.fill_value
        fills = (fill,) if isinstance(fill, int | float) else tuple(fill)
        if not fills or any(not 0 <= _number("fill_value", v) <= 255 for v in fills):
            raise OptionError(f"Transform(fill_value={fill!r}); give 0-255 or a tuple of them")
        put(self, "fill_value", int(fills[0]) if isinstance(fill, int | float) else fills)
        self._check_normalisation()
        if self.user_fn is not None and not callable(self.user_fn):
            raise OptionError("Transform(user_fn=...) must be a callable (top-level function)")
        if self.pipeline is not None:
            self._check_pipeline()

    def _check_pipeline(self) -> None:
        """An outside pipeline is callable and owns the geometry alone."""
        if not callable(self.pipeline):
            raise OptionError(
                f"Transform(pipeline={type(self.pipeline).__name__}): give a torchvision v2 "
                "transform, an albumentations Compose or a function fn(record, rng) -> record"
            )
        geometry = [n for n in _GEOMETRY if getattr(self, n) != _DEFAULTS[n]]
        if self.flip > 0:
            geometry.append("flip")
        if geometry:
            raise OptionError(
                f"Transform(pipeline=..., {', '.join(geometry)}): the pipeline owns the "
                "geometry; put these steps in it (photometric ops, user_fn and normalisation "
                "may stay)"
            )

    def _check_base(self, size: tuple[int, ...]) -> None:
        if self.resize is not None and not 1 <= _number("resize", self.resize) < math.inf:
            raise OptionError(f"Transform(resize={self.resize}); give a positive shorter side")
        if self.resize is not None and int(self.resize) < min(size):
            raise OptionError(
                f"Transform(resize={self.resize}) is smaller than the crop size {size}: the "
                "centre crop would not fit; raise resize or lower size"
            )
        chosen = [n for n in ("resize", "crop_scale") if getattr(self, n) is not None]
        if self.keep_scale:
            chosen.append("keep_scale")
        if len(chosen) > 1:
            raise OptionError(
                f"Transform({', '.join(chosen)}): these choose the base view; give one"
            )

    def _check_normalisation(self) -> None:
        for name in ("mean", "std"):
            given = getattr(self, name)
            if given is None:
                continue
            try:
                value = tuple(float(v) for v in np.atleast_1d(np.asarray(given, dtype=float)))
            except (TypeError, ValueError):
                value = ()
            if not value or not all(math.isfinite(v) for v in value):
                raise OptionError(
                    f"Transform({name}={given!r}); give one finite number per channel on the "
                    "0-255 scale (e.g. mean=(123.7, 116.3, 103.5), std=(58.4, 57.1, 57.4)), "
                    "or leave it None for the dataset's ingest statistics: a NaN or inf "
                    "would make every image of every batch NaN"
                )
            object.__setattr__(self, name, value)
        if self.std is not None and min(self.std) <= 0:
            raise OptionError(f"Transform(std={self.std}); every std must be > 0")
        object.__setattr__(self, "sample_axis", _axis("sample_axis", self.sample_axis, 3))
        object.__setattr__(self, "batch_axis", _axis("batch_axis", self.batch_axis, 4))
        if (self.sample_zmuv or self.batch_zmuv) and self.dtype != "float32":
            raise OptionError("Transform(sample_zmuv/batch_zmuv=True) needs dtype='float32'")

    # -- derived ---------------------------------------------------------------------------

    def output_shape(self, channels: int) -> tuple[int, int, int]:
        """The shape of one output sample for ``channels`` image channels."""
        h, w = self.size
        return (channels, h, w) if self.layout == "CHW" else (h, w, channels)

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        return np.dtype(self.dtype)

    @property
    def has_affine(self) -> bool:
        """Whether any random geometric parameter (beyond ``flip``) is drawn per sample."""
        return bool(
            self.zoom_range != (1.0, 1.0)
            or self.rotation_range != (0.0, 0.0)
            or self.shear_range != (0.0, 0.0)
            or self.translation_range != (0.0, 0.0)
            or self.do_flip_lr
            or self.do_flip_ud
        )

    @property
    def has_photometric(self) -> bool:
        return bool(
            self.brightness_range != (1.0, 1.0)
            or self.contrast_range != (1.0, 1.0)
            or self.saturation_range != (1.0, 1.0)
            or self.grayscale > 0
        )

    def resolved(self, stats: Mapping[str, Any] | None, channels: int) -> Transform:
        """A copy with ``mean``/``std`` filled from ingest ``stats`` and checked for ``channels``.

        Raises:
            OptionError: mean/std with the wrong number of channels, or no stats to fill from.
        """
        if self.dtype != "float32" or not self.normalize:
            return self
        mean, std = self.mean, self.std
        if mean is None or std is None:
            if not stats or "mean" not in stats or "std" not in stats:
                raise OptionError(
                    "Transform(normalize=True) needs mean and std, and the dataset manifest has "
                    "no stats; pass Transform(mean=..., std=...) or normalize=False"
                )
            mean = tuple(float(v) for v in stats["mean"]) if mean is None else mean
            std = tuple(max(float(v), 1e-6) for v in stats["std"]) if std is None else std
        for name, value in (("mean", mean), ("std", std)):
            if len(value) != channels:
                raise OptionError(
                    f"Transform({name}={value}) has {len(value)} values but the images have "
                    f"{channels} channels"
                )
        return replace(self, mean=mean, std=std)

    # -- the original datumio's keyword names ----------------------------------------------

    @classmethod
    def from_original(
        cls,
        output_shape: tuple[int, int] | None = None,
        *,
        input_shape: tuple[int, ...] | None = None,
        warp_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Transform:
        """A Transform from ``perturb_image``-style keywords (``rng_aug_params``).

        ``output_shape`` (default ``input_shape[:2]``) becomes ``size`` with
        ``keep_scale=True`` (the original crops without resizing, unless ``resize`` or
        ``crop_scale`` is given); ``warp_kwargs`` ``order`` (0, 1, 3), ``mode`` and ``cval``
        become ``resample``, ``fill_mode`` and ``fill_value``; other keywords are fields.
        """
        kw = dict(kwargs)
        kw.pop("rng", None)  # the loader draws from its own per-sample streams
        shape = output_shape if output_shape is not None else kw.pop("size", None)
        if shape is None:
            if input_shape is None:
                raise OptionError("Transform.from_original needs output_shape or input_shape")
            shape = tuple(input_shape[:2])
        kw["size"] = parse_size(shape, "Transform.from_original(output_shape=...)")
        if "resize" not in kw and "crop_scale" not in kw:
            kw.setdefault("keep_scale", True)
        kw.update(warp_options(warp_kwargs))
        return cls(**kw)


def _backend(name: str, value: Any) -> Backend:
    """One of :data:`BACKENDS`, usable here (``opencv`` needs OpenCV installed)."""
    backend: Backend = _BACKEND(name, value)
    if backend == "opencv" and not opencv_probe.installed():
        raise refuse(name, value, 'pip install "datumio[opencv]" first, or "auto"')
    return backend


_BACKEND = choice(BACKENDS)


def _refused(text: str) -> OptionError:
    """A refusal of :mod:`datumio.checks` (``name=value; give ...``) as Transform's
    error: ``Transform(name=value); give ...``."""
    field, _, want = text.partition("; ")
    return OptionError(f"Transform({field}); {want}")


#: The fields checked alone (``datumio.checks``); the base view, the fill and the
#: normalisation follow in :meth:`Transform.__post_init__`.
_SPAN = _range("finite low <= high")
_FACTORS = _range("0 <= low <= high", lambda lo, hi: lo >= 0)
_SCALES = _range("0 < low <= high", lambda lo, hi: lo > 0)
_CHECKS: dict[str, Check] = {
    "crop_scale": optional(_range("0 < low <= high <= 1", lambda lo, hi: lo > 0 and hi <= 1)),
    "crop_ratio": _SCALES,
    "zoom_range": _SCALES,
    "rotation_range": _SPAN,
    "shear_range": _SPAN,
    "translation_range": _SPAN,
    "brightness_range": _FACTORS,
    "contrast_range": _FACTORS,
    "saturation_range": _FACTORS,
    "flip": probability,
    "grayscale": probability,
    "layout": choice(LAYOUTS),
    "dtype": choice(DTYPES),
    "resample": choice(RESAMPLES),
    "fill_mode": choice(FILL_MODES),
    "backend": _backend,
}


#: Datumio's own geometry, which an outside ``pipeline`` replaces (``flip`` apart: a number).
_GEOMETRY = (
    "resize",
    "keep_scale",
    "crop_scale",
    "zoom_range",
    "allow_stretch",
    "rotation_range",
    "shear_range",
    "translation_range",
    "do_flip_lr",
    "do_flip_ud",
)
_DEFAULTS = {f.name: f.default for f in fields(Transform) if f.name in _GEOMETRY}
_ORDERS = {0: "nearest", 1: "bilinear", 3: "bicubic"}
_MODES = {"nearest": "edge", "constant": "constant", "edge": "edge", "reflect": "reflect"}
_MODES.update(symmetric="symmetric", wrap="wrap", mirror="reflect")


def warp_options(warp_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Transform fields for the original ``warp_kwargs`` (``order``, ``mode``, ``cval``; and
    ``backend``, new)."""
    out: dict[str, Any] = {}
    if not warp_kwargs:
        return out
    unknown = set(warp_kwargs) - {"order", "mode", "cval", "backend"}
    if unknown:
        raise OptionError(
            f"warp_kwargs {sorted(unknown)} unknown; use order, mode, cval and backend"
        )
    if "backend" in warp_kwargs:
        try:
            out["backend"] = _backend("warp_kwargs backend", warp_kwargs["backend"])
        except BadValue as exc:
            raise OptionError(str(exc)) from None
    if "order" in warp_kwargs:
        order = int(warp_kwargs["order"])
        if order not in _ORDERS:
            raise OptionError(f"warp_kwargs order={order}; use 0 (nearest), 1 or 3")
        out["resample"] = _ORDERS[order]
    if "mode" in warp_kwargs:
        mode = str(warp_kwargs["mode"])
        if mode not in _MODES:
            raise OptionError(f"warp_kwargs mode={mode!r}; use one of {sorted(_MODES)}")
        out["fill_mode"] = _MODES[mode]
    if "cval" in warp_kwargs:
        out["fill_value"] = round(float(warp_kwargs["cval"]))
    return out


def transform_from_dict(spec: Mapping[str, Any]) -> Transform:
    """A Transform from a JSON-like mapping of its fields (lists become tuples).

    ``output_shape`` or ``warp_kwargs`` keys select the original names
    (:meth:`Transform.from_original`). ``size`` takes what :func:`parse_size` takes:
    ``[224, 160]``, ``224`` or ``"224x160"`` (height first).

    Raises:
        OptionError: an unknown field, a missing size or a value that does not fit its field.
    """
    names = {f.name for f in fields(Transform)} | {"output_shape", "warp_kwargs", "input_shape"}
    unknown = sorted(set(spec) - names)
    if unknown:
        raise OptionError(f"transform spec: unknown field(s) {unknown}; see docs/augment.md")
    for code in ("user_fn", "pipeline"):
        if code in spec:
            raise OptionError(f"transform spec: {code} cannot come from JSON; build it in Python")
    kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()}
    original = "output_shape" in kw or "warp_kwargs" in kw
    if not original and "size" not in kw:
        raise OptionError(
            'transform spec: give size: [height, width], N or "HxW" text (or output_shape)'
        )
    try:
        return Transform.from_original(**kw) if original else Transform(**kw)
    except OptionError:
        raise
    except (TypeError, ValueError) as exc:
        # A field of the wrong JSON type ("flip": "yes") fails inside a conversion.
        raise OptionError(
            f"transform spec: a field has a value of the wrong type ({exc}); see the field "
            "table in docs/augment.md"
        ) from exc
