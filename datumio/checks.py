"""The shared value checks of options and manifests: validation that reads as a table.

A check is ``check(name, value) -> cleaned value``: it returns the value in its one
canonical type (an int, a float, a tuple) or raises :class:`BadValue` whose text names the
value and says what to give. Option dataclasses list their attributes with a check each and
run the table with :func:`apply`, which turns a refusal into the caller's error
(:class:`~datumio.errors.OptionError`); the typed manifest sections list their JSON keys
the same way (a refusal there is a :class:`~datumio.errors.FormatError` naming the file).
Rules that tie values together stay in the owner, after the table.

.. code-block:: python

    CHECKS = {"workers": positive_int, "prefetch": optional(positive_int)}

    def __post_init__(self) -> None:
        apply(self, CHECKS)
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from datumio.errors import OptionError, printable, unknown_keywords

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

#: ``check(name, value) -> cleaned value``; raises :class:`BadValue`.
Check = Callable[[str, Any], Any]


class BadValue(ValueError):
    """A value a check refused: the text names it and says what to give instead."""


def refuse(name: str, value: object, want: str) -> BadValue:
    """The :class:`BadValue` for ``name=value`` that should have been ``want``."""
    shown = printable(repr(value))
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return BadValue(f"{name}={shown}; give {want}")


def is_int(value: object) -> bool:
    """An int (numpy integers too), never a bool."""
    if type(value) is int:  # the common case, without the slower abstract-class check
        return True
    return not isinstance(value, bool) and isinstance(value, numbers.Integral)


def integer(low: int | None = None, high: int | None = None, *, want: str = "") -> Check:
    """An int in ``[low, high]`` (either bound may be open)."""
    if not want:
        if low == 1 and high is None:
            want = "a positive int"
        elif low == 0 and high is None:
            want = "an int >= 0"
        else:
            want = f"an int from {low} to {high}" if high is not None else f"an int >= {low}"

    def check(name: str, value: Any) -> int:
        if not is_int(value) or (low is not None and value < low):
            raise refuse(name, value, want)
        if high is not None and value > high:
            raise refuse(name, value, want)
        return int(value)

    return check


positive_int = integer(1)
non_negative_int = integer(0)


def number(
    low: float | None = None, high: float | None = None, *, above: bool = False, want: str = ""
) -> Check:
    """A finite real number in ``[low, high]`` (``above=True``: strictly above ``low``)."""
    if not want:
        parts = ["a finite number"]
        if low is not None:
            parts.append(f"{'>' if above else '>='} {low:g}")
        if high is not None:
            parts.append(f"<= {high:g}")
        want = " ".join(parts)

    def check(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise refuse(name, value, want)
        x = float(value)
        if not math.isfinite(x) or (high is not None and x > high):
            raise refuse(name, value, want)
        if low is not None and (x <= low if above else x < low):
            raise refuse(name, value, want)
        return x

    return check


finite = number()
probability = number(0.0, 1.0, want="a probability from 0 to 1")


def choice(options: Iterable[str]) -> Check:
    """One of ``options`` (strings, compared exactly)."""
    allowed = tuple(options)

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise refuse(name, value, f"one of {', '.join(map(repr, allowed))}")
        return value

    return check


def flag(name: str, value: Any) -> bool:
    """True or False (numpy bools too), nothing else."""
    if not isinstance(value, bool | np.bool_):
        raise refuse(name, value, "True or False")
    return bool(value)


def optional(check: Check, default: Any = None) -> Check:
    """None (read as ``default``, shared by every read: an immutable value), or what
    ``check`` accepts."""

    def checked(name: str, value: Any) -> Any:
        return default if value is None else check(name, value)

    return checked


def string(*, empty: bool = True, longest: int | None = None) -> Check:
    """A str (``empty=False``: at least one character; ``longest``: at most that many)."""
    want = "a text" if empty else "a non-empty text"
    if longest is not None:
        want += f" of at most {longest} characters"

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or (not empty and not value):
            raise refuse(name, value, want)
        if longest is not None and len(value) > longest:
            raise refuse(name, value, want)
        return value

    return check


def mapping(key: Check, value: Check, *, want: str = "a mapping") -> Check:
    """A mapping whose keys pass ``key`` and values pass ``value``; a new dict (an item is
    named ``name.KEY``)."""

    def checked(name: str, given: Any) -> dict[Any, Any]:
        if not isinstance(given, Mapping):
            raise refuse(name, given, want)
        return {key(f"{name} key", k): value(f"{name}.{k}", v) for k, v in given.items()}

    return checked


def pair(check: Check) -> Check:
    """Two values, each passing ``check``; a tuple."""

    def checked(name: str, value: Any) -> tuple[Any, Any]:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise refuse(name, value, "a pair (a, b)")
        items = tuple(value)
        if len(items) != 2:
            raise refuse(name, value, "a pair (a, b)")
        return check(f"{name}[0]", items[0]), check(f"{name}[1]", items[1])

    return checked


def sequence(check: Check, *, want: str = "a list or tuple") -> Check:
    """Any number of values (a string is not a sequence of names), each passing ``check``;
    a tuple."""

    def checked(name: str, value: Any) -> tuple[Any, ...]:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise refuse(name, value, want)
        return tuple(check(f"{name}[{i}]", item) for i, item in enumerate(value))

    return checked


def apply(
    owner: object,
    table: Mapping[str, Check],
    error: Callable[[str], Exception] = OptionError,
) -> None:
    """Run each field of ``owner`` (a dataclass, frozen or not) through its check in
    ``table`` and store the cleaned value; a refusal raises ``error(text)``."""
    for name, check in table.items():
        try:
            value = check(name, getattr(owner, name))
        except BadValue as exc:
            raise error(str(exc)) from None
        object.__setattr__(owner, name, value)


Options = TypeVar("Options", bound="DataclassInstance")


def on_top(
    cls: type[Options], options: Options | None, keywords: Mapping[str, Any], caller: str
) -> Options:
    """``options`` (None: ``cls()``, the defaults) with the fields named in ``keywords``
    replaced: what ``caller(..., options=..., **keywords)`` runs with.

    Raises:
        TypeError: a keyword that is no field of ``cls`` (with the closest field name).
    """
    names = [field.name for field in dataclasses.fields(cls)]
    error = unknown_keywords(caller, keywords, names)
    if error is not None:
        raise error
    if options is None:
        return cls(**keywords)
    return dataclasses.replace(options, **keywords)
