"""WebDataset tar shards as a :class:`~datumio.ingest.samples.Source`.

The tars are read in the order given (:mod:`datumio.ingest.webdataset_tars`: which tars,
and their members grouped into samples). Each sample becomes a
:class:`~datumio.ingest.samples.Sample`: its image is the first member with an image
extension (or the one ``columns["image"]`` names), its label the ``.cls`` member
(``.cls2``, ``.index``) or the ``label`` key of its ``.json`` member, and every other
member or JSON key a field. A sample that cannot be a record (no image, no usable label, a
member cut short) is a :class:`~datumio.ingest.sources.Reject`, and so is a tar that
cannot be opened; the run goes on with the next.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Unpack

from datumio.checks import on_top
from datumio.errors import IngestError, OptionError
from datumio.fields.spec import check_name
from datumio.ingest.options import IngestKeywords, IngestOptions
from datumio.ingest.report import IngestReport
from datumio.ingest.samples import Sample, Source
from datumio.ingest.sources import Reject
from datumio.ingest.stream import write_source
from datumio.ingest.webdataset_tars import Members, TarInput, read_tar, shown, tar_paths

#: Member extensions that are an image (the first one of a sample is its image).
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "ppm", "pgm", "bmp", "tif", "tiff")
#: Members that hold a sample's label as text, in order of preference.
LABEL_MEMBERS = ("cls", "cls2", "index")
_INTEGER = re.compile(r"-?[0-9]+")
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_]")
#: Marks a role whose value the sample lacks.
_ABSENT = object()


def webdataset_source(src: TarInput, options: IngestOptions) -> Source:
    """The samples of WebDataset tar shards, in order: tars as given, members as stored.

    Args:
        src: a tar file, a brace pattern (``shards/train-{000000..000009}.tar``), a
            directory (its ``.tar``, ``.tar.gz`` and ``.tgz`` files by name), or a list
            of any of these.
        options: ``columns`` says where a sample's image, label, group and split are (a
            member's extension, ``json:KEY`` for a key of the ``.json`` member, or a name
            that is a member's extension where the sample has one, else a JSON key);
            ``splits`` keeps the samples of those splits; ``fields`` declares field types;
            ``class_names`` fixes the classes.

    Raises:
        IngestError: no tar file is named (an empty list or directory).
        OptionError: ``columns["image"]`` is not an extension; ``splits`` without
            ``columns["split"]``.
    """
    tars = tar_paths(src)
    picks = _picks(options.columns or {})
    if options.splits is not None and picks.split is None:
        raise OptionError(
            "splits picks samples by their split: name where a sample's split is with "
            "columns={'split': EXTENSION or 'json:KEY'} (--column split=...)"
        )
    return Source(
        kind="webdataset",
        where=shown(src, tars),
        samples=functools.partial(
            _samples, tars, picks, options.splits, options.class_names is not None
        ),
        class_names=options.class_names,
        fields=dict(options.fields or {}),
        fingerprint=_fingerprint(tars, options),
        total=None,
    )


def from_webdataset(
    urls: TarInput,
    out: str | os.PathLike[str],
    options: IngestOptions | None = None,
    **overrides: Unpack[IngestKeywords],
) -> IngestReport:
    """Import WebDataset tar shards into a new dataset at ``out``, as
    ``datumio.ingest(urls, out, importer="webdataset", ...)`` does.

    Args:
        urls: the tars (see :func:`webdataset_source`).
        out: the dataset directory to create (``.lmdb`` / ``.h5`` picks the backend).
        options: see :class:`IngestOptions`; ``columns``, ``fields``, ``splits`` and
            ``class_names`` choose what a sample gives.
        overrides: any other :class:`IngestOptions` field on top of ``options``.

    Raises:
        IngestError: see :func:`webdataset_source`; ``out`` is a URL; every error of an
            ingest.
    """
    chosen = {**overrides, "importer": "webdataset"}
    merged = on_top(IngestOptions, options, chosen, "from_webdataset")
    return write_source(webdataset_source(urls, merged), out, merged)


@dataclass(frozen=True)
class _Pick:
    """Where a role's value is: the first of ``members`` (extensions) the sample has, else
    the ``key`` of its ``.json`` member."""

    members: tuple[str, ...]
    key: str | None


@dataclass(frozen=True)
class _Picks:
    """The pick of each role; ``image`` None: the first member with an image extension."""

    image: str | None
    label: _Pick
    group: _Pick | None
    split: _Pick | None


def _picks(columns: Mapping[str, str]) -> _Picks:
    """The roles' picks from ``IngestOptions.columns`` (defaults for roles not named)."""
    image = columns.get("image")
    if image is not None and (image.startswith("json:") or "/" in image):
        raise OptionError(
            f"columns.image={image!r}: the image is a member of the sample; give its "
            "extension (jpg, png, seg.png)"
        )
    label = columns.get("label")
    return _Picks(
        image=None if image is None else image.lower().lstrip("."),
        label=_Pick(LABEL_MEMBERS, "label") if label is None else _pick(label),
        group=None if columns.get("group") is None else _pick(columns["group"]),
        split=None if columns.get("split") is None else _pick(columns["split"]),
    )


def _pick(column: str) -> _Pick:
    """``json:KEY`` (a key of the ``.json`` member) or ``NAME`` (the member with that
    extension, else that key of the ``.json`` member)."""
    if column.startswith("json:"):
        return _Pick((), column[len("json:") :])
    return _Pick((column.lower().lstrip("."),), column)


class _Bad(Exception):
    """A sample that cannot be a record: the reject's reason and detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def _samples(
    tars: Sequence[str], picks: _Picks, splits: Sequence[str] | None, fixed_classes: bool
) -> Iterator[Sample | Reject]:
    """Every sample of every tar, in order (a sample of another split is left out)."""
    kinds = _Kinds(fixed_classes)
    for tar in tars:
        for members in read_tar(tar):
            if isinstance(members, Reject):
                yield members
                continue
            try:
                sample = kinds.check(_sample(members, picks))
            except _Bad as bad:
                yield Reject(members.name, bad.reason, bad.detail)
                continue
            if splits is None or sample.split in splits:
                yield sample


class _Kinds:
    """Labels (without fixed class names) and groups are all ids or all names: the first
    sample's decide, a sample of the other kind is rejected."""

    def __init__(self, fixed_classes: bool) -> None:
        self._fixed_classes = fixed_classes
        self._names: dict[str, bool] = {}

    def check(self, sample: Sample) -> Sample:
        if not self._fixed_classes:
            self._same("label", sample.label)
        if sample.group is not None:
            self._same("group", sample.group)
        return sample

    def _same(self, role: str, value: int | str) -> None:
        is_name = isinstance(value, str)
        first = self._names.setdefault(role, is_name)
        if first != is_name:
            kinds = ("an id", "names") if first else ("a name", "ids")
            raise _Bad(
                f"bad {role}",
                f"{role} {value!r} is {kinds[0]}, the samples before it have {kinds[1]}",
            )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _sample(members: Members, picks: _Picks) -> Sample:
    """The record the members make.

    Raises:
        _Bad: no image, a missing or unusable label, group or split, unreadable JSON or
            text, two members of one extension.
    """
    if members.problem is not None:
        raise _Bad(*members.problem)
    meta = _meta(members)
    used_members = {"json"}
    used_keys: set[str] = set()
    image = _image(members, picks.image)
    used_members.add(image)

    def take(pick: _Pick | None, role: str) -> Any:
        if pick is None:
            return _ABSENT
        for extension in pick.members:
            if extension in members.data:
                used_members.add(extension)
                return _member_text(members, extension, role)
        if pick.key is not None and pick.key in meta:
            used_keys.add(pick.key)
            return meta[pick.key]
        return _ABSENT

    label = _label(take(picks.label, "label"), picks.label)
    group = _group(take(picks.group, "group"), picks.group)
    split = _split(take(picks.split, "split"))
    fields = _fields(members, meta, used_members, used_keys)
    return Sample(members.data[image], label, group, fields or None, members.name, split)


def _meta(members: Members) -> dict[str, Any]:
    """The sample's ``.json`` member as a dict ({} without one)."""
    if "json" not in members.data:
        return {}
    try:
        meta = json.loads(members.data["json"])
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise _Bad("bad json", f"{members.key}.json: {exc}") from None
    if not isinstance(meta, dict):
        raise _Bad("bad json", f"{members.key}.json holds a {type(meta).__name__}, not an object")
    return meta


def _image(members: Members, extension: str | None) -> str:
    """The extension of the sample's image member."""
    if extension is not None:
        if extension not in members.data:
            raise _Bad("no image", f"no member {members.key}.{extension}")
        return extension
    for found in members.data:
        if found in IMAGE_EXTENSIONS:
            return found
    have = ", ".join(members.data) or "none"
    raise _Bad("no image", f"no member of an image type (members: {have})")


def _member_text(members: Members, extension: str, role: str) -> str | int:
    """A label, group or split member's text (an integer as an int)."""
    try:
        text = members.data[extension].decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _Bad(f"bad {role}", f"{members.key}.{extension} is not UTF-8 text") from None
    return int(text) if _INTEGER.fullmatch(text) else text


def _label(value: Any, pick: _Pick) -> int | str:
    """A class id (an int >= 0) or a class name."""
    if value is _ABSENT or value is None or value == "":
        raise _Bad("missing label", f"no {_places(pick)}")
    if isinstance(value, str) or (_is_int(value) and value >= 0):
        return value
    raise _Bad("bad label", f"label {str(value)[:60]!r} is neither a class id >= 0 nor a name")


def _group(value: Any, pick: _Pick | None) -> int | str | None:
    """The sample's group: None without a group column, else an int or a name."""
    if pick is None:
        return None
    if value is _ABSENT or value is None or value == "":
        raise _Bad("missing group", f"no {_places(pick)}")
    if isinstance(value, str) or _is_int(value):
        return value
    raise _Bad("bad group", f"group {str(value)[:60]!r} is neither an int nor a name")


def _places(pick: _Pick) -> str:
    """Where ``pick`` looks, for a reject's detail."""
    places = [f".{m} member" for m in pick.members]
    if pick.key is not None:
        places.append(f"JSON key {pick.key!r}")
    return " or ".join(places)


def _split(value: Any) -> str | None:
    if value is _ABSENT or value is None or value == "":
        return None
    if isinstance(value, str) or _is_int(value):
        return str(value)
    raise _Bad("bad split", f"split {str(value)[:60]!r} is not a name")


def _fields(
    members: Members, meta: Mapping[str, Any], used_members: set[str], used_keys: set[str]
) -> dict[str, Any]:
    """The sample's fields: the JSON keys not used for a role (values as JSON gives them),
    then the other members (``.txt`` as text, any other as bytes)."""
    fields: dict[str, Any] = {}
    origins: dict[str, str] = {}

    def put(raw: str, origin: str, value: Any) -> None:
        name = field_name(raw, origin)
        what = f"JSON key {raw!r}" if origin == "json" else f"member .{raw}"
        if name in origins:
            raise IngestError(
                f"{members.name}: {origins[name]} and {what} would both be field {name!r}; "
                "rename one of them in the shards"
            )
        origins[name], fields[name] = what, value

    for key, value in meta.items():
        if key not in used_keys:
            put(key, "json", value)
    for extension, data in members.data.items():
        if extension in used_members:
            continue
        if extension == "txt":
            try:
                put(extension, "member", data.decode("utf-8"))
            except UnicodeDecodeError:
                raise _Bad("bad field value", f"{members.key}.txt is not UTF-8 text") from None
        else:
            put(extension, "member", data)
    return fields


@functools.lru_cache(maxsize=1024)
def field_name(raw: str, origin: str) -> str:
    """The field a JSON key (``origin="json"``) or member extension (``"member"``) becomes:
    each character other than a letter, digit or ``_`` becomes ``_`` (``seg.png`` ->
    ``seg_png``); a name that then starts with a digit or is reserved (path, label, group,
    image) gets the prefix ``json_`` or ``member_``.

    Raises:
        IngestError: the name is still no field name (over 64 characters).
    """
    name = _NOT_IN_NAME.sub("_", raw)
    for candidate in (name, f"{origin}_{name}"):
        try:
            check_name(candidate)
        except OptionError:
            continue
        return candidate
    what = f"JSON key {raw!r}" if origin == "json" else f"member extension {raw!r}"
    raise IngestError(
        f"{what} cannot be a field name (at most 64 letters, digits and _); shorten it in "
        "the shards"
    )


def _fingerprint(tars: Sequence[str], options: IngestOptions) -> str:
    """Names, sizes and modification times of the tars, and the choice of columns."""
    stats: list[tuple[str, int | None, int | None]] = []
    for tar in tars:
        try:
            st = os.stat(tar)
        except OSError:
            stats.append((os.path.abspath(tar), None, None))
            continue
        stats.append((os.path.abspath(tar), st.st_size, st.st_mtime_ns))
    facts = {"tars": stats, "columns": dict(sorted((options.columns or {}).items()))}
    return hashlib.sha256(json.dumps(facts).encode("utf-8")).hexdigest()
