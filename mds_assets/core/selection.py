"""Field selection: which raw fields become `.mds` fields, and how each value becomes bytes.

A selection is a list of `name[:encoding]`. Encodings, with the JSON types each accepts:

| encoding | accepts | stored as |
| --- | --- | --- |
| utf8 (default) | string | its UTF-8 bytes |
| base64 | string | the decoded bytes |
| hex | string | the decoded bytes |
| json | any value | compact JSON, UTF-8 |
| int64 | integer | 8 bytes, little-endian, signed |
| float64 | number | 8 bytes, little-endian IEEE 754 |
| bytes | bytes (file content of a file-tree batch) | as they are |
"""

from __future__ import annotations

import binascii
import json
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pybase64

from .grouping import place_of

_INT64 = struct.Struct("<q")
_FLOAT64 = struct.Struct("<d")


class SelectionError(ValueError):
    """A selection that does not fit the data; the message names batch, line and field."""


def json_type(value: Any) -> str:
    """The JSON type name of a raw value ('bytes' for file content)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    names: dict[type, str] = {str: "string", dict: "object", list: "array", bytes: "bytes"}
    return names.get(type(value), "null" if value is None else type(value).__name__)


@dataclass(frozen=True)
class Encoding:
    accepts: frozenset[str]  # JSON types
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]  # for reading the dataset back
    column_encoding: str  # what the bytes are, as recorded in the manifest (writer.column_encodings)


def _base64(value: str) -> bytes:
    # pybase64 (SIMD, validating): ~25x the standard library's strict decoder, and stricter (no
    # excess padding). Base64 payloads are most of a typical batch's bytes: this is the hot path.
    return pybase64.b64decode(value, validate=True)


ENCODINGS: dict[str, Encoding] = {
    "utf8": Encoding(frozenset({"string"}), lambda v: v.encode("utf-8"), lambda b: b.decode("utf-8"), "str"),
    "base64": Encoding(frozenset({"string"}), _base64, lambda b: b, "bytes"),
    "hex": Encoding(frozenset({"string"}), bytes.fromhex, lambda b: b, "bytes"),
    "json": Encoding(
        frozenset({"string", "integer", "number", "boolean", "null", "object", "array"}),
        lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
        json.loads,
        "json",
    ),
    "int64": Encoding(frozenset({"integer"}), _INT64.pack, lambda b: _INT64.unpack(b)[0], "int64"),
    "float64": Encoding(
        frozenset({"integer", "number"}), lambda v: _FLOAT64.pack(float(v)), lambda b: _FLOAT64.unpack(b)[0], "float64"
    ),
    "bytes": Encoding(frozenset({"bytes"}), bytes, lambda b: b, "bytes"),
}


@dataclass(frozen=True)
class FieldSelection:
    name: str
    encoding: str = "utf8"

    def __str__(self) -> str:
        return f"{self.name}:{self.encoding}"


def parse_fields(spec: str | Iterable[str]) -> list[FieldSelection]:
    """`"uid,text,img:base64"` or `["uid", "img:base64"]` -> selections; unknown encodings are refused."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    selections = []
    for item in (item.strip() for item in items):
        if not item:
            continue
        name, _, encoding = item.partition(":")
        encoding = encoding or "utf8"
        if encoding not in ENCODINGS:
            raise SelectionError(f"field {name!r}: unknown encoding {encoding!r}; known: {', '.join(ENCODINGS)}")
        selections.append(FieldSelection(name, encoding))
    if not selections:
        raise SelectionError("no fields selected")
    names = [selection.name for selection in selections]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise SelectionError(f"fields selected twice: {', '.join(repeated)}")
    return selections


class RecordEncoder:
    """Turns raw records into `{field: bytes}` samples; a bad record names batch, line and field."""

    def __init__(self, selections: list[FieldSelection], batch: str) -> None:
        self.selections = selections
        self.batch = batch
        self._encoders = [(s.name, s.encoding, ENCODINGS[s.encoding]) for s in selections]

    def encode(self, line: int, record: Mapping[str, Any]) -> dict[str, bytes]:
        sample = {}
        for name, encoding_name, encoding in self._encoders:
            try:
                value = record[name]
            except KeyError:
                raise SelectionError(f"{place_of(self.batch, line)}, field {name!r}: missing") from None
            kind = json_type(value)
            if kind not in encoding.accepts:
                raise SelectionError(
                    f"{place_of(self.batch, line)}, field {name!r}: a JSON {kind} cannot be "
                    f"encoded as {encoding_name} (accepts {', '.join(sorted(encoding.accepts))})"
                )
            try:
                sample[name] = encoding.encode(value)
            except (ValueError, binascii.Error, OverflowError, struct.error, RecursionError) as error:
                raise SelectionError(
                    f"{place_of(self.batch, line)}, field {name!r}: not valid {encoding_name} ({error})"
                ) from None
        return sample


def column_encodings(selections: list[FieldSelection]) -> dict[str, str]:
    """Each selected field's MDS v2 column encoding, recorded in the partition's manifest."""
    return {selection.name: ENCODINGS[selection.encoding].column_encoding for selection in selections}


def decoders_for(selections: list[FieldSelection]) -> dict[str, Callable[[bytes], Any]]:
    """Decoders that read a selection's fields back (for MDSDataset / StreamingDataset)."""
    return {selection.name: ENCODINGS[selection.encoding].decode for selection in selections}
