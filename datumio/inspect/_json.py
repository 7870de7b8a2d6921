"""The JSON of the inspect dataclasses: their fields in declaration order, by name.

Every report type of :mod:`datumio.inspect` is a frozen dataclass whose fields are declared
in the order of the keys of its JSON object (``datumio inspect --json``), so one walk over
the fields writes them all. A field's ``metadata`` adjusts its key:

* :func:`renamed` (``{"json": "from"}``): a key that is no good Python name;
* :func:`omitted_when` (``{"omit": value}``): the key is left out when the field equals it
  (a key that only some entries have);
* :func:`null_as` (``{"null_as": value}``): None is written as that value;
* :func:`inlined`: the field's own keys are written in place of it.

Nested values: an object with a ``to_json()`` (or ``to_dict()``, the verify report's) gives
its own JSON, a dataclass is walked the same way, tuples become lists and mappings dicts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

_UNSET = object()


def renamed(key: str) -> dict[str, Any]:
    """Metadata: write the field under ``key``."""
    return {"json": key}


def omitted_when(value: object) -> dict[str, Any]:
    """Metadata: leave the key out when the field equals ``value``."""
    return {"omit": value}


def null_as(value: object) -> dict[str, Any]:
    """Metadata: write ``value`` where the field is None."""
    return {"null_as": value}


def inlined() -> dict[str, Any]:
    """Metadata: write the field's keys (a dataclass, or None for none) in its place."""
    return {"inline": True}


def dataclass_json(obj: Any) -> dict[str, Any]:
    """The JSON object of the dataclass instance ``obj`` (see the module docstring)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        meta = f.metadata
        if meta.get("omit", _UNSET) is not _UNSET and value == meta["omit"]:
            continue
        if value is None and "null_as" in meta:
            value = meta["null_as"]
        if meta.get("inline"):
            out.update({} if value is None else json_value(value))
        else:
            out[meta.get("json", f.name)] = json_value(value)
    return out


def json_value(value: Any) -> Any:
    """``value`` as JSON data: a fresh copy, so that changing it changes no report."""
    for method in ("to_json", "to_dict"):
        own = getattr(value, method, None)
        if callable(own) and not isinstance(value, type):
            return own()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclass_json(value)
    if isinstance(value, Mapping):
        return {key: json_value(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value
