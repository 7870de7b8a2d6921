"""Output paths of the tools, checked before any work starts.

A tool that reads a whole dataset and only then finds that it cannot write ``--grid
/no/such/dir/g.png`` has wasted the run and buried the reason under its summary. Each check
here raises :class:`~datumio.errors.OptionError` naming the option and the path; the tools
turn it into exit status 2 before they open anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from datumio.errors import OptionError


def _nearest_existing(path: str) -> str:
    """``path`` itself or its closest ancestor that exists."""
    path = os.path.abspath(path)
    while not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _writable_folder(option: str, path: str, folder: str) -> None:
    if not os.path.isdir(folder):
        raise OptionError(f"{option} {path}: {folder} is a file, not a folder; choose another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OptionError(f"{option} {path}: the folder {folder} is not writable")


def check_output_file(option: str, path: str) -> None:
    """A file the tool will create or replace at ``path``.

    Its folder must exist (the tool makes no folders for a file) and be writable, and
    ``path`` must not be a folder.

    Raises:
        OptionError: names ``option``, ``path`` and what is wrong.
    """
    if not path:
        raise OptionError(f"{option}: give a file path")
    if os.path.isdir(path):
        raise OptionError(
            f"{option} {path}: is a folder; give a file path in it, such as "
            f"{os.path.join(path, 'out' + _suffix(option))}"
        )
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(folder):
        first = _nearest_existing(folder)
        if not os.path.isdir(first):
            _writable_folder(option, path, first)
        raise OptionError(f"{option} {path}: the folder {folder} does not exist; create it first")
    _writable_folder(option, path, folder)


def check_output_folder(option: str, path: str) -> None:
    """A folder the tool will create (with missing parents) or fill at ``path``.

    ``path`` must not be a file, and the nearest folder that exists on the way to it must be
    writable when ``path`` itself does not exist yet.

    Raises:
        OptionError: names ``option``, ``path`` and what is wrong.
    """
    if not path:
        raise OptionError(f"{option}: give a folder path")
    if os.path.lexists(path) and not os.path.isdir(path):
        raise OptionError(f"{option} {path}: is a file, not a folder; choose another path")
    if not os.path.exists(path):
        _writable_folder(option, path, _nearest_existing(os.path.dirname(os.path.abspath(path))))


def check_image_file(option: str, path: str) -> None:
    """:func:`check_output_file`, and Pillow can write the format ``path``'s suffix names."""
    check_output_file(option, path)
    from PIL import Image  # Pillow's format table: only when a picture is asked for

    suffix = os.path.splitext(path)[1].lower()
    known = Image.registered_extensions()
    if known.get(suffix) not in Image.SAVE:
        raise OptionError(
            f"{option} {path}: Pillow cannot write {suffix or 'a file without a suffix'}; "
            "end the name with .png (or .jpg, .webp)"
        )


def check_distinct(outputs: Iterable[tuple[str, str | None]]) -> None:
    """No two options name the same output file (the second would overwrite the first)."""
    seen: dict[str, str] = {}
    for option, path in outputs:
        if path is None:
            continue
        key = os.path.realpath(path)
        if key in seen:
            raise OptionError(f"{seen[key]} and {option} both write {path}; give each its own file")
        seen[key] = option


def _suffix(option: str) -> str:
    return ".html" if "html" in option else ".png"
