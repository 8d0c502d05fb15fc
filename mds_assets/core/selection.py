"""Field selection: which raw fields become `.mds` fields, and how each value becomes bytes.

A selection is a list of `name[:encoding]`. The encodings are `writer.column_encodings.FIELDS`
(one registry: JSON types accepted, encoder, column encoding, decoder, load-snippet text):

| encoding | accepts | stored as (column encoding) |
| --- | --- | --- |
| utf8 (default) | string | its UTF-8 bytes (str) |
| base64 | string | the decoded bytes (bytes) |
| hex | string | the decoded bytes (bytes) |
| json | any value | compact JSON, UTF-8 (json) |
| int64 | integer | 8 bytes, little-endian, signed (int64) |
| float64 | number | 8 bytes, little-endian IEEE 754 (float64) |
| bytes | bytes (file content of a file-tree batch) | as they are (bytes) |
| jpeg | bytes, or a base64 string | the JPEG file as it is, checked by its signature (jpeg) |
| png | bytes, or a base64 string | the PNG file as it is, checked by its signature (png) |
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from writer.column_encodings import FIELDS, FieldEncoding, json_type

from .grouping import place_of

__all__ = ["ENCODINGS", "FieldSelection", "RecordEncoder", "SelectionError", "json_type"]

ENCODINGS: dict[str, FieldEncoding] = FIELDS  # the selection's names for the registry's field encodings


class SelectionError(ValueError):
    """A selection that does not fit the data; the message names batch, line and field."""


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
    """Decoders that read a selection's fields back (for MDSDataset / StreamingDataset). An image
    field is decoded (to a PIL image) only where Pillow is installed; elsewhere it stays bytes."""
    return {
        selection.name: ENCODINGS[selection.encoding].decode
        for selection in selections
        if ENCODINGS[selection.encoding].column.can_decode()
    }
