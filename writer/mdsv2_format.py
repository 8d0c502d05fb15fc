"""Byte layout of MDS v2 (mosaicml-streaming's `index.json` + `shard.NNNNN.mds[.ext]`): pure
functions, no I/O. The writer, the reader and the verifier all go through this module.

A shard is, little-endian:

    uint32 samples | uint32 offsets[samples + 1] | config JSON | samples...

where each offset is a sample's start from the beginning of the file (the last one is the
file's size), the config is the shard's settings (`json.dumps(..., sort_keys=True)`), and each
sample is one uint32 size per variable-size column, then every column's bytes, columns in
name order. `index.json` lists every shard with its settings, sample count, basename, byte
count and hashes, uncompressed (`raw_data`) and as stored (`zip_data`, when compressed).
"""

from __future__ import annotations

import itertools
import json
import posixpath
import re
import struct
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

INDEX_NAME = "index.json"
VERSION = 2
FORMAT = "mds"
MAX_OFFSET = 0xFFFFFFFF  # offsets are uint32: no shard may be larger
SHARD_HEAD = 8  # the sample count and the first offset (plus 4 per sample)
SAMPLE_OVERHEAD = 4  # each sample's offset
_UINT32 = struct.Struct("<I")
_LITTLE_ENDIAN = sys.byteorder == "little"
_SHARD_FILE = re.compile(r"\Ashard\.\d{5,}\.mds(\.(br|bz2|gz|snappy|zstd))?\Z")
_UNITS = {"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40, "pb": 1 << 50, "eb": 1 << 60}


class FormatError(ValueError):
    """An index or shard that is not valid MDS v2; the message names the file and what is wrong."""


def shard_basename(number: int, extension: str | None = None) -> str:
    """`shard.00000.mds`, `shard.00000.mds.zstd`: five digits at least, numbered from 0."""
    return f"shard.{number:05}.{FORMAT}" + (f".{extension}" if extension else "")


def is_shard_file(name: str) -> bool:
    """True for a name an MDS v2 shard of some writer would have."""
    return bool(_SHARD_FILE.match(name))


def parse_size_limit(value: int | str | None) -> int | None:
    """S's `size_limit`: an int, or a string such as "64mb" (units of 1024); falsy: no limit."""
    if not value:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"size_limit must be an int or a string such as '64mb', not {type(value).__name__}")
    number = int(value) if not isinstance(value, str) else _parse_bytes(value)
    if number < 0:
        raise ValueError(f"size_limit must be at least 0, got {number}")
    if number > MAX_OFFSET:
        raise ValueError(f"size_limit must be less than 2**32 (shard offsets are uint32), got {number}")
    return number


def _parse_bytes(text: str) -> int:
    lowered = text.lower().strip()
    try:
        for suffix, unit in _UNITS.items():
            if lowered.endswith(suffix):
                return int(float(lowered[: -len(suffix)]) * unit)
        if lowered.endswith("b") and lowered[:-1].isdigit():
            return int(lowered[:-1])
        if lowered.isdigit():
            return int(lowered)
    except ValueError:
        pass
    raise ValueError(f"size_limit {text!r} is not a size (e.g. 67108864, '64mb', '100kb', '512b')")


def shard_config(
    columns: Sequence[tuple[str, str, int | None]], compression: str | None, hashes: list[str], size_limit: int | None
) -> dict[str, Any]:
    """The settings every shard carries (in its file and in its index entry)."""
    return {
        "version": VERSION,
        "format": FORMAT,
        "compression": compression,
        "hashes": hashes,
        "size_limit": size_limit,
        "column_names": [name for name, _, _ in columns],
        "column_encodings": [encoding for _, encoding, _ in columns],
        "column_sizes": [size for _, _, size in columns],
    }


def config_bytes(config: dict[str, Any]) -> bytes:
    return json.dumps(config, sort_keys=True).encode("utf-8")


def shard_head(sample_sizes: array[int], config_data: bytes) -> bytes:
    """The bytes before a shard's samples: the count, every offset, the config. The caller keeps
    the shard under 4 GiB (`MAX_OFFSET`); a larger one is an OverflowError, never a wrapped offset."""
    start = SHARD_HEAD + 4 * len(sample_sizes) + len(config_data)
    offsets = array("I", itertools.accumulate(sample_sizes, initial=start))  # OverflowError past uint32
    return _UINT32.pack(len(sample_sizes)) + _to_little_endian(offsets) + config_data


def encode_index(shards: Sequence[dict[str, Any]]) -> bytes:
    """`index.json`, byte for byte as S writes it (`json.dump(..., sort_keys=True)`)."""
    return json.dumps({"version": VERSION, "shards": list(shards)}, sort_keys=True).encode("utf-8")


def _to_little_endian(values: array[int]) -> bytes:
    if not _LITTLE_ENDIAN:
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


# -- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FileInfo:
    basename: str  # relative to the dataset's folder; may name a subfolder (a merged index)
    bytes: int
    hashes: dict[str, str]


@dataclass(frozen=True)
class ShardEntry:
    """One shard as the index describes it."""

    samples: int
    raw_data: FileInfo
    zip_data: FileInfo | None
    compression: str | None
    column_names: tuple[str, ...]
    column_encodings: tuple[str, ...]
    column_sizes: tuple[int | None, ...]

    @property
    def stored(self) -> FileInfo:
        """The file as it is in storage."""
        return self.zip_data or self.raw_data


@dataclass(frozen=True)
class Index:
    shards: tuple[ShardEntry, ...]

    @property
    def total_samples(self) -> int:
        return sum(shard.samples for shard in self.shards)

    @property
    def columns(self) -> dict[str, str]:
        """`{name: encoding}` of the first shard (an index of no shards has none)."""
        if not self.shards:
            return {}
        return dict(zip(self.shards[0].column_names, self.shards[0].column_encodings))


def is_v2_index(data: bytes) -> bool:
    """True for JSON whose top level says `"version": 2` (how S recognises its index)."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return False
    return isinstance(document, dict) and document.get("version") == VERSION


def decode_index(data: bytes, where: str) -> Index:
    """Parse and check `index.json`; anything malformed is a FormatError naming `where`."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise FormatError(f"{where}: not valid JSON ({error})") from None
    if not isinstance(document, dict) or document.get("version") != VERSION:
        raise FormatError(f'{where}: not an MDS v2 index (no "version": 2 at its top level)')
    shards = document.get("shards")
    if not isinstance(shards, list):
        raise FormatError(f'{where}: "shards" is not a list')
    entries = tuple(_shard_entry(shard, f"{where}, shard {number}") for number, shard in enumerate(shards))
    for number, entry in enumerate(entries[1:], start=1):
        if entry.column_names != entries[0].column_names or entry.column_encodings != entries[0].column_encodings:
            raise FormatError(f"{where}: shard {number}'s columns differ from shard 0's")
    return Index(entries)


def _shard_entry(shard: Any, where: str) -> ShardEntry:
    if not isinstance(shard, dict):
        raise FormatError(f"{where}: not a JSON object")
    if shard.get("format") != FORMAT:
        raise FormatError(f"{where}: format {shard.get('format')!r}; only {FORMAT!r} is read here")
    names, encodings, sizes = (shard.get(key) for key in ("column_names", "column_encodings", "column_sizes"))
    if not (isinstance(names, list) and isinstance(encodings, list) and isinstance(sizes, list)):
        raise FormatError(f"{where}: column_names, column_encodings and column_sizes must be lists")
    if not len(names) == len(encodings) == len(sizes) or not names:
        raise FormatError(f"{where}: column_names, column_encodings and column_sizes differ in length or are empty")
    if not all(isinstance(name, str) for name in names + encodings):
        raise FormatError(f"{where}: column names and encodings must be strings")
    if not all(size is None or _is_count(size) and size > 0 for size in sizes):
        raise FormatError(f"{where}: column_sizes must be positive integers or null")
    if len(set(names)) != len(names):
        raise FormatError(f"{where}: a column name is repeated")
    samples: Any = shard.get("samples")
    if not _is_count(samples):
        raise FormatError(f"{where}: samples must be a count, got {samples!r}")
    compression = shard.get("compression")
    raw = _file_info(shard.get("raw_data"), f"{where}, raw_data")
    zipped = None if shard.get("zip_data") is None else _file_info(shard["zip_data"], f"{where}, zip_data")
    if zipped is None and compression:
        raise FormatError(f"{where}: compression {compression!r} but no zip_data")
    if compression is not None and not isinstance(compression, str):
        raise FormatError(f"{where}: compression must be a string or null")
    return ShardEntry(samples, raw, zipped, compression or None, tuple(names), tuple(encodings), tuple(sizes))


def _file_info(info: Any, where: str) -> FileInfo:
    if not isinstance(info, dict):
        raise FormatError(f"{where}: not a JSON object")
    basename: Any = info.get("basename")
    size: Any = info.get("bytes")
    hashes: Any = info.get("hashes", {})
    if not isinstance(basename, str) or not is_safe_basename(basename):
        raise FormatError(f"{where}: basename {basename!r} is not a relative path inside the dataset")
    if not _is_count(size):
        raise FormatError(f"{where}: bytes must be a count, got {size!r}")
    if not isinstance(hashes, dict) or not all(isinstance(v, str) for v in hashes.values()):
        raise FormatError(f"{where}: hashes must map algorithm names to hex digests")
    return FileInfo(basename, size, dict(hashes))


def is_safe_basename(name: str) -> bool:
    """A relative path that stays inside the dataset's folder (no `..`, no absolute path, no `\\`)."""
    if not name or name.startswith("/") or "\\" in name or "\x00" in name or "://" in name:
        return False
    parts = name.split("/")
    return all(part not in ("", ".", "..") for part in parts) and posixpath.normpath(name) == name


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def sample_offsets(shard: bytes | memoryview, entry: ShardEntry, where: str) -> array[int]:
    """The `samples + 1` offsets of a shard's file, checked: counts agree, offsets rise, stay in the file."""
    size = len(shard)
    if size < SHARD_HEAD:
        raise FormatError(f"{where}: {size} bytes, too short for a shard")
    (count,) = _UINT32.unpack_from(shard, 0)
    if count != entry.samples:
        raise FormatError(f"{where}: holds {count} samples, the index says {entry.samples}")
    end = 4 + 4 * (count + 1)
    if end > size:
        raise FormatError(f"{where}: {size} bytes, too short for the offsets of {count} samples")
    offsets = array("I")
    offsets.frombytes(bytes(shard[4:end]))
    if not _LITTLE_ENDIAN:
        offsets.byteswap()
    if offsets[0] < end or offsets[-1] != size or any(a > b for a, b in zip(offsets, offsets[1:])):
        raise FormatError(f"{where}: sample offsets do not rise from the header to the end of the file")
    return offsets


def shard_config_of(shard: bytes | memoryview, offsets: array[int], where: str) -> dict[str, Any]:
    """The config JSON a shard file carries between its offsets and its first sample."""
    start = 4 + 4 * len(offsets)
    try:
        config = json.loads(bytes(shard[start : offsets[0]]))
    except (ValueError, RecursionError) as error:
        raise FormatError(f"{where}: its config is not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise FormatError(f"{where}: its config is not a JSON object")
    return config


def split_sample(data: bytes | memoryview, column_sizes: Sequence[int | None], where: str) -> list[memoryview]:
    """A sample's bytes -> one memoryview per column; sizes that do not add up are a FormatError."""
    view = memoryview(data)
    variable = sum(1 for size in column_sizes if size is None)
    head = 4 * variable
    if len(view) < head:
        raise FormatError(f"{where}: {len(view)} bytes, too short for its {variable} column sizes")
    stored = iter(struct.unpack_from(f"<{variable}I", view, 0))
    sizes = [size if size is not None else next(stored) for size in column_sizes]
    if head + sum(sizes) != len(view):
        raise FormatError(f"{where}: column sizes add up to {head + sum(sizes)} bytes, the sample has {len(view)}")
    values = []
    position = head
    for size in sizes:
        values.append(view[position : position + size])
        position += size
    return values
