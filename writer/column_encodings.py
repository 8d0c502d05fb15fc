"""Every encoding of a value as bytes, in one registry: what the bytes of a column mean.

Two tables, one built on the other, so nothing about an encoding is said twice:

* `COLUMNS`: MDS v2's column encodings (mosaicml-streaming's names: `str`, `bytes`, `int64`,
  `jpeg`, ...), each with its fixed size, its encoder (a Python value to the bytes
  mosaicml-streaming 0.13.0's `MDSWriter` writes for it), its decoder and the decoder's source
  text for load snippets. `MDSWriter` and the readers of both formats use them; a v1 dataset
  records them in `mds_manifest.json` (beside the index, so Composer's readers are unaffected).
* `FIELDS`: the field encodings of a raw record's JSON values (`utf8`, `base64`, `int64`, ...),
  each with the JSON types it accepts, its encoder and the column encoding its bytes are in.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib.util import find_spec
from typing import Any

import pybase64

from .exact_json import dumps_compact


@dataclass(frozen=True)
class ColumnEncoding:
    """One MDS v2 column encoding."""

    name: str
    size: int | None  # fixed size in bytes; None when each value records its own size
    encode: Callable[[Any], bytes]  # a Python value -> bytes (bytes given are taken as encoded already)
    decode: Callable[[bytes], Any]
    decoder_source: str  # `decode` as Python source, for load snippets
    decoder_imports: tuple[str, ...] = ()  # the modules `decoder_source` needs
    safe: bool = True  # False: decoding may run code (pickle); readers decode it only when asked to
    needs: str | None = None  # the module `decode` needs when it is not always installed

    def can_decode(self) -> bool:
        return self.needs is None or find_spec(self.needs) is not None


def _bytes(value: Any) -> bytes:
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"expected bytes, got {type(value).__name__}")


def _str(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"expected str, got {type(value).__name__}")
    return value.encode("utf-8")


def _scalar(code: str, kind: str) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    """Little-endian fixed-size scalars, as numpy's `dtype(value).tobytes()` writes them. A value
    out of the type's range is refused (numpy would wrap an int or round a float to inf)."""
    packer = struct.Struct("<" + code)

    def encode(value: Any) -> bytes:
        if kind == "int" and (isinstance(value, float) or not hasattr(value, "__index__")):
            raise TypeError(f"expected an integer, got {type(value).__name__}")
        if kind == "float" and not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
            raise TypeError(f"expected a number, got {type(value).__name__}")
        try:
            return packer.pack(value)
        except (struct.error, OverflowError) as error:
            raise ValueError(f"{value!r} does not fit ({error})") from None

    def decode(data: bytes) -> Any:
        return packer.unpack(data)[0]

    return encode, decode


def _scalar_column(name: str, code: str, kind: str) -> ColumnEncoding:
    encode, decode = _scalar(code, kind)
    return ColumnEncoding(
        name, struct.calcsize(code), encode, decode, f"lambda b: struct.unpack('<{code}', b)[0]", ("struct",)
    )


def _int64(value: Any) -> bytes:
    """S's `int`: a Python int only (numpy's int64 bytes)."""
    if not isinstance(value, int):
        raise TypeError(f"expected int, got {type(value).__name__}")
    return _INT64_ENCODE(value)


def _json(value: Any) -> bytes:
    if type(value).__name__ == "ndarray":  # as S: numpy arrays as nested lists
        value = value.tolist()
    return json.dumps(value).encode("utf-8")


def _text_of(kind: type, what: str) -> Callable[[Any], bytes]:
    def encode(value: Any) -> bytes:
        if not isinstance(value, kind) or isinstance(value, bool):
            raise TypeError(f"expected {what}, got {type(value).__name__}")
        return str(value).encode("utf-8")

    return encode


def _image(image_format: str) -> Callable[[Any], bytes]:
    """Encoded image bytes pass through (the writer takes bytes as they are); a PIL image is
    saved as S saves it, when Pillow is installed."""

    def encode(value: Any) -> bytes:
        if type(value).__module__.startswith("PIL."):
            if image_format == "JPEG" and getattr(value, "format", None) == "JPEG" and getattr(value, "filename", ""):
                try:
                    with open(value.filename, "rb") as file:
                        return file.read()
                except FileNotFoundError:
                    pass
            out = io.BytesIO()
            value.save(out, format=image_format)
            return out.getvalue()
        raise TypeError(f"expected encoded {image_format} bytes (or a PIL image), got {type(value).__name__}")

    return encode


def _open_image(data: bytes) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(data))


_INT64_ENCODE, _INT64_DECODE = _scalar("q", "int")
_IMAGE_SOURCE = "lambda b: PIL.Image.open(io.BytesIO(b))"

COLUMNS: dict[str, ColumnEncoding] = {
    column.name: column
    for column in [
        ColumnEncoding("bytes", None, _bytes, bytes, "lambda b: b"),
        ColumnEncoding("str", None, _str, lambda data: bytes(data).decode("utf-8"), "lambda b: b.decode('utf-8')"),
        ColumnEncoding("int", 8, _int64, _INT64_DECODE, "lambda b: int.from_bytes(b, 'little', signed=True)"),
        *(
            _scalar_column(name, code, kind)
            for name, code, kind in [
                ("int8", "b", "int"),
                ("int16", "h", "int"),
                ("int32", "i", "int"),
                ("uint8", "B", "int"),
                ("uint16", "H", "int"),
                ("uint32", "I", "int"),
                ("uint64", "Q", "int"),
                ("float16", "e", "float"),
                ("float32", "f", "float"),
                ("float64", "d", "float"),
            ]
        ),
        ColumnEncoding(
            "int64",
            8,
            _INT64_ENCODE,
            _INT64_DECODE,
            "lambda b: int.from_bytes(b, 'little', signed=True)",
        ),
        ColumnEncoding(
            "str_int", None, _text_of(int, "int"), lambda data: int(bytes(data).decode()), "lambda b: int(b.decode())"
        ),
        ColumnEncoding(
            "str_float",
            None,
            _text_of(float, "float"),
            lambda data: float(bytes(data).decode()),
            "lambda b: float(b.decode())",
        ),
        ColumnEncoding(
            "str_decimal",
            None,
            _text_of(Decimal, "Decimal"),
            lambda data: Decimal(bytes(data).decode()),
            "lambda b: decimal.Decimal(b.decode())",
            ("decimal",),
        ),
        ColumnEncoding("json", None, _json, json.loads, "json.loads", ("json",)),
        ColumnEncoding("pkl", None, pickle.dumps, pickle.loads, "pickle.loads", ("pickle",), safe=False),
        ColumnEncoding("jpeg", None, _image("JPEG"), _open_image, _IMAGE_SOURCE, ("io", "PIL.Image"), needs="PIL"),
        ColumnEncoding("png", None, _image("PNG"), _open_image, _IMAGE_SOURCE, ("io", "PIL.Image"), needs="PIL"),
    ]
}
DECODERS: dict[str, Callable[[bytes], Any]] = {name: column.decode for name, column in COLUMNS.items()}


# -- field encodings: a raw record's JSON values as column bytes ------------------------------


@dataclass(frozen=True)
class FieldEncoding:
    """How one JSON value of a raw record becomes the bytes of a column."""

    name: str
    accepts: frozenset[str]  # JSON type names (see `json_type`); "bytes" for file content
    encode: Callable[[Any], bytes]
    column: ColumnEncoding

    @property
    def column_encoding(self) -> str:
        return self.column.name

    @property
    def decode(self) -> Callable[[bytes], Any]:
        return self.column.decode


def json_type(value: Any) -> str:
    """The JSON type name of a raw value ('bytes' for file content)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, (float, Decimal)):  # Decimal: exact_json.ExactNumber
        return "number"
    names: dict[type, str] = {str: "string", dict: "object", list: "array", bytes: "bytes"}
    return names.get(type(value), "null" if value is None else type(value).__name__)


def _base64(value: str) -> bytes:
    # pybase64 (SIMD, validating): ~25x the standard library's strict decoder, and stricter (no
    # excess padding). Base64 payloads are most of a typical batch's bytes: this is the hot path.
    return pybase64.b64decode(value, validate=True)


_SIGNATURES = {"jpeg": (b"\xff\xd8\xff", "JPEG"), "png": (b"\x89PNG\r\n\x1a\n", "PNG")}


def _encoded_image(kind: str) -> Callable[[Any], bytes]:
    """File content, or a base64 string of it; refused unless it starts as the image format does."""
    signature, label = _SIGNATURES[kind]

    def encode(value: Any) -> bytes:
        data = value if isinstance(value, bytes) else _base64(value)
        if not data.startswith(signature):
            raise ValueError(f"not {label} data (it does not start with the {label} signature)")
        return data

    return encode


_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _int64_in_range(value: int) -> bytes:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise OverflowError(f"the integer {value} is out of int64's range, {_INT64_MIN} to {_INT64_MAX}")
    return _INT64_ENCODE(value)


_ANY_JSON = frozenset({"string", "integer", "number", "boolean", "null", "object", "array"})

FIELDS: dict[str, FieldEncoding] = {
    field.name: field
    for field in [
        FieldEncoding("utf8", frozenset({"string"}), lambda value: value.encode("utf-8"), COLUMNS["str"]),
        FieldEncoding("base64", frozenset({"string"}), _base64, COLUMNS["bytes"]),
        FieldEncoding("hex", frozenset({"string"}), bytes.fromhex, COLUMNS["bytes"]),
        FieldEncoding(
            "json",
            _ANY_JSON,
            dumps_compact,  # every number as written; NaN and Infinity refused
            COLUMNS["json"],
        ),
        FieldEncoding("int64", frozenset({"integer"}), _int64_in_range, COLUMNS["int64"]),
        FieldEncoding(
            "float64",
            frozenset({"integer", "number"}),
            lambda value: struct.pack("<d", float(value)),
            COLUMNS["float64"],
        ),
        FieldEncoding("bytes", frozenset({"bytes"}), bytes, COLUMNS["bytes"]),
        FieldEncoding("jpeg", frozenset({"bytes", "string"}), _encoded_image("jpeg"), COLUMNS["jpeg"]),
        FieldEncoding("png", frozenset({"bytes", "string"}), _encoded_image("png"), COLUMNS["png"]),
    ]
}


# -- what writers and readers ask of the registry ---------------------------------------------


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
        if encoding not in COLUMNS:
            raise ValueError(f"column_encodings[{field!r}] = {encoding!r}; known: {', '.join(COLUMNS)}")
    return encodings


def _json_kind(value: Any) -> str:
    return {list: "list", dict: "object", int: "number", float: "number", bool: "boolean"}.get(type(value), "null")


def decoders_for(encodings: Mapping[str, str], allow_unsafe: bool = False) -> dict[str, Callable[[bytes], Any]]:
    """Decoders by recorded encoding. Left as bytes: `bytes` columns, encodings this registry does
    not know, `pkl` unless `allow_unsafe` (unpickling runs code), and images without Pillow."""
    decoders = {}
    for field, name in encodings.items():
        column = COLUMNS.get(name)
        if column is None or name == "bytes" or (not column.safe and not allow_unsafe) or not column.can_decode():
            continue
        decoders[field] = column.decode
    return decoders


def undecoded_reasons(encodings: Mapping[str, str], allow_unsafe: bool = False) -> dict[str, str]:
    """Why each field that `decoders_for` leaves as bytes (other than `bytes` columns) stays bytes."""
    reasons = {}
    for field, name in encodings.items():
        column = COLUMNS.get(name)
        if column is None:
            reasons[field] = f"encoding {name!r} is not one this reader decodes"
        elif not column.safe and not allow_unsafe:
            reasons[field] = f"{name} is decoded only with allow_unsafe_types=True (unpickling runs code)"
        elif not column.can_decode():
            reasons[field] = f"{name} decodes to PIL images only when Pillow is installed (pip install Pillow)"
    return reasons
