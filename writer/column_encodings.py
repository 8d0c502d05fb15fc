"""What each field's bytes mean, recorded in the manifest so readers can decode without being told.

The names are MDS v2's column encodings (mosaicml-streaming's `index.json`): `str`, `bytes`,
`int64`, `float64`, `json`. They live in `mds_manifest.json`, beside the index, so Composer's
v1 readers, which read only `index.mds`, are unaffected.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping
from typing import Any

_INT64 = struct.Struct("<q")
_FLOAT64 = struct.Struct("<d")

DECODERS: dict[str, Callable[[bytes], Any]] = {
    "str": lambda data: data.decode("utf-8"),
    "bytes": bytes,
    "int64": lambda data: _INT64.unpack(data)[0],
    "float64": lambda data: _FLOAT64.unpack(data)[0],
    "json": json.loads,
}


def checked_encodings(encodings: Mapping[str, str] | None, fields: tuple[str, ...]) -> dict[str, str]:
    """`{field: encoding}` for fields of the dataset and known encodings; anything else is refused."""
    if encodings is not None and not isinstance(encodings, Mapping):
        raise ValueError(f"column_encodings is a JSON {type(encodings).__name__}, not an object")
    encodings = dict(encodings or {})
    unknown_fields = sorted(set(encodings) - set(fields))
    if unknown_fields:
        raise ValueError(f"column_encodings name fields the dataset does not have: {', '.join(unknown_fields)}")
    for field, encoding in encodings.items():
        if not isinstance(encoding, str):
            raise ValueError(f"column_encodings[{field!r}] is a JSON {_json_kind(encoding)}, not an encoding name")
        if encoding not in DECODERS:
            raise ValueError(f"column_encodings[{field!r}] = {encoding!r}; known: {', '.join(DECODERS)}")
    return encodings


def _json_kind(value: Any) -> str:
    return {list: "list", dict: "object", int: "number", float: "number", bool: "boolean"}.get(type(value), "null")


def decoders_for(encodings: Mapping[str, str]) -> dict[str, Callable[[bytes], Any]]:
    return {field: DECODERS[encoding] for field, encoding in encodings.items() if encoding != "bytes"}
