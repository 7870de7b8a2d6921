"""Read a JPEG's header without decoding it: is it one OpenCV decodes exactly like Pillow?

A record stored as ``keep`` holds the source file's bytes, which may be anything Pillow
opens. Most are plain JPEGs, and those decode with OpenCV's libjpeg-turbo to the same pixels
as with Pillow's, at less cost (no ``tobytes`` copy, no PIL image). :func:`plain_components`
says which: 8-bit baseline, extended or progressive Huffman JPEGs with 1 or 3 components, no
Adobe (CMYK/YCCK/RGB) marker, no multi-picture (MPO) index and no EXIF rotation. Everything
else goes to Pillow, which knows the module's rules for it.
"""

from __future__ import annotations

import struct

_SOF_PLAIN = frozenset({0xC0, 0xC1, 0xC2})  # baseline, extended, progressive (Huffman)
_SOF_OTHER = frozenset({0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RSTn: no length field
_ORIENTATION = 0x0112
_HEADER_LIMIT = 1 << 16  # a header longer than this (a huge EXIF or ICC block) goes to Pillow
#: The segments :func:`_plain_segment` reads: other frames, Adobe, MPF and EXIF.
_INSPECTED = frozenset({*_SOF_OTHER, 0xEE, 0xE2, 0xE1})


def plain_components(data: bytes | memoryview) -> int | None:
    """The number of components (1 or 3) of a plain JPEG, or None when ``data`` is anything
    else or its header cannot be read."""
    head = bytes(memoryview(data)[:_HEADER_LIMIT])
    end = len(head)
    if head[:2] != b"\xff\xd8":
        return None
    at, components = 2, None
    while at + 4 <= end:
        if head[at] != 0xFF:
            return None
        marker = head[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _STANDALONE:
            at += 2
            continue
        length = (head[at + 2] << 8) | head[at + 3]
        if length < 2 or at + 2 + length > end:
            return None
        if marker == 0xDA:  # start of scan: the header is over
            return components
        if marker in _SOF_PLAIN:
            if length < 8 or head[at + 4] != 8 or head[at + 9] not in (1, 3):
                return None
            components = head[at + 9]
        elif marker in _INSPECTED and not _plain_segment(marker, head[at + 4 : at + 2 + length]):
            return None
        at += 2 + length
    return None


def _plain_segment(marker: int, body: bytes) -> bool:
    """Whether a header segment other than the frame keeps the JPEG plain."""
    if marker in _SOF_OTHER:
        return False
    if marker == 0xEE:  # Adobe: CMYK, YCCK or untransformed RGB
        return not body.startswith(b"Adobe")
    if marker == 0xE2:  # multi-picture index
        return not body.startswith(b"MPF\x00")
    if marker == 0xE1 and body.startswith(b"Exif\x00\x00"):
        return _orientation(body[6:]) == 1
    return True


def _orientation(tiff: bytes) -> int | None:
    """The orientation tag of an EXIF block's first directory (1 when absent), None when
    the block cannot be read."""
    if tiff[:4] == b"II*\x00":
        order = "<"
    elif tiff[:4] == b"MM\x00*":
        order = ">"
    else:
        return None
    try:
        (first,) = struct.unpack_from(order + "I", tiff, 4)
        (count,) = struct.unpack_from(order + "H", tiff, first)
        for k in range(count):
            tag, kind, n = struct.unpack_from(order + "HHI", tiff, first + 2 + 12 * k)
            if tag == _ORIENTATION:
                if kind != 3 or n != 1:  # SHORT, one value
                    return None
                (value,) = struct.unpack_from(order + "H", tiff, first + 2 + 12 * k + 8)
                return int(value)
    except struct.error:
        return None
    return 1
