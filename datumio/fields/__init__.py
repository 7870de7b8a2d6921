"""Typed record fields: what a field is (:class:`FieldSpec`), its values, its stored bytes.

Below ``shards`` and ``ingest``: the format stores fields with :mod:`datumio.fields.encoding`,
ingest checks a labels file's values with :mod:`datumio.fields.values`.
"""

from datumio.fields.encoding import Boxes, decode, encode, fields_crc32
from datumio.fields.spec import FieldSpec, FieldValueError, parse_declaration, parse_declarations

__all__ = [
    "Boxes",
    "FieldSpec",
    "FieldValueError",
    "decode",
    "encode",
    "fields_crc32",
    "parse_declaration",
    "parse_declarations",
]
