"""Byte layout of an `.mds` sample and index (version 1): pure functions, no I/O.

See ``docs/format.md``. Every integer is little-endian. This module is the only place that
knows where a byte goes; the writer, the reader and the verifier all go through it.
"""

from __future__ import annotations

import itertools
import re
import struct
import sys
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from .compression import SUFFIXES

MAGIC = 0xDA7AD06E
VERSION = 1
INDEX_NAME = "index.mds"
SHARD_SUFFIX = ".mds"
SIZE_HEADER_ITEM = 8  # each field's size is an int64 at the head of its record

# bps_format -> array typecode of the per-sample sizes (signed, as the original reader reads them)
SIZE_TYPECODES = {1: "b", 2: "h", 4: "i", 8: "q"}
CONSTANT_SIZE_FORMAT = 0
_LITTLE_ENDIAN = sys.byteorder == "little"

_HEAD = struct.Struct("<IIIqq")
HEADER_SIZE = _HEAD.size


def claimed_shard_count(head: bytes) -> int | None:
    """The shard count an index's header claims (its first HEADER_SIZE bytes), before anything
    else of it is read; None when `head` is not an .mds header."""
    if len(head) < _HEAD.size:
        return None
    magic, version, num_shards, _, _ = _HEAD.unpack_from(head)
    return num_shards if (magic, version) == (MAGIC, VERSION) else None


def shard_name(shard_number: int, suffix: str = "") -> str:
    """File name of a shard: six digits, numbered from 0 with no gaps."""
    return f"{shard_number:06d}{SHARD_SUFFIX}{suffix}"


_SHARD_FILE = re.compile(r"\A\d{6}\.mds(" + "|".join(re.escape(suffix) for suffix in SUFFIXES) + r")\Z")


def is_shard_file(name: str) -> bool:
    """True for a name a shard of some dataset (compressed or not) would have."""
    return bool(_SHARD_FILE.match(name))


def record_header(field_count: int) -> struct.Struct:
    """The packer of a record's size header (one int64 per field)."""
    return struct.Struct(f"<{field_count}q")


def narrowest_size_format(largest: int) -> int:
    """The narrowest *signed* width holding `largest`, unlike the original which wraps."""
    for width in (1, 2, 4):
        if largest < 1 << (8 * width - 1):
            return width
    return 8


def _to_little_endian(values: array[int]) -> bytes:
    if not _LITTLE_ENDIAN:
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _from_little_endian(typecode: str, data: bytes | memoryview) -> array[int]:
    values = array(typecode)
    values.frombytes(data)
    if not _LITTLE_ENDIAN:
        values.byteswap()
    return values


@dataclass(frozen=True)
class Index:
    """Everything `index.mds` says. `sample_sizes` is one int per sample (size of the whole record)."""

    samples_per_shard: tuple[int, ...]
    bytes_per_shard: tuple[int, ...]
    sample_sizes: Sequence[int]
    fields: tuple[str, ...]
    size_format: int

    @property
    def num_shards(self) -> int:
        return len(self.samples_per_shard)

    @property
    def total_samples(self) -> int:
        return sum(self.samples_per_shard)

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_per_shard)


def encode_index(
    samples_per_shard: Sequence[int],
    bytes_per_shard: Sequence[int],
    sample_sizes: array[int],
    fields: Sequence[str],
) -> bytes:
    """The bytes of `index.mds`. Sizes are stored constant (format 0) or in the narrowest signed width."""
    total_samples = len(sample_sizes)
    parts = [
        _HEAD.pack(MAGIC, VERSION, len(samples_per_shard), total_samples, sum(bytes_per_shard)),
        struct.pack(f"<{len(samples_per_shard)}q", *samples_per_shard),
        struct.pack(f"<{len(bytes_per_shard)}q", *bytes_per_shard),
    ]
    if total_samples == 0:
        parts.append(struct.pack("<i", 1))
    else:
        largest = max(sample_sizes)
        if largest == min(sample_sizes):
            parts.append(struct.pack("<iq", CONSTANT_SIZE_FORMAT, largest))
        else:
            size_format = narrowest_size_format(largest)
            sizes = sample_sizes
            if sizes.typecode != SIZE_TYPECODES[size_format]:
                sizes = array(SIZE_TYPECODES[size_format], sample_sizes)
            parts.append(struct.pack("<i", size_format))
            parts.append(_to_little_endian(sizes))
    names = [field.encode("utf-8") for field in fields]
    parts.append(struct.pack(f"<i{len(names)}i", len(names), *map(len, names)))
    parts.extend(names)
    return b"".join(parts)


class FormatError(ValueError):
    """Bytes that do not follow the format; the message says what and where."""


class _Source:
    """The bytes of an index, from memory or from a stream (e.g. a gzip file being inflated).

    `take` never allocates more than is really there: in memory a count is checked against the
    bytes left before anything is sliced; from a stream it is read in chunks of at most 1 MiB,
    so an index that claims more than it holds costs no more than what it holds.
    """

    CHUNK = 1 << 20

    def __init__(self, data: bytes | bytearray | memoryview | BinaryIO, where: str) -> None:
        self.where = where
        self.offset = 0
        if isinstance(data, (bytes, bytearray, memoryview)):
            self._view: memoryview | None = memoryview(data)
            self._stream: BinaryIO | None = None
        else:
            self._view, self._stream = None, data

    def take(self, count: int, what: str) -> memoryview:
        if count < 0:
            raise FormatError(f"{self.where}: negative length {count} for {what} at byte {self.offset}")
        if self._view is not None:
            if count > len(self._view) - self.offset:
                raise self._truncated(what)
            chunk = self._view[self.offset : self.offset + count]
        else:
            assert self._stream is not None
            buffer = bytearray()
            while len(buffer) < count:
                piece = self._stream.read(min(count - len(buffer), self.CHUNK))
                if not piece:
                    raise self._truncated(what)
                buffer += piece
            chunk = memoryview(buffer)
        self.offset += count
        return chunk

    def trailing(self) -> str | None:
        """None at the end of the data, else a description of what is left."""
        if self._view is not None:
            left = len(self._view) - self.offset
            return f"{left} bytes" if left else None
        assert self._stream is not None
        return "more bytes" if self._stream.read(1) else None

    def _truncated(self, what: str) -> FormatError:
        return FormatError(f"{self.where}: truncated while reading {what} at byte {self.offset}")


def decode_index(data: bytes | bytearray | memoryview | BinaryIO, where: str = "index") -> Index:
    """Parse `index.mds` from its bytes or from a binary stream (read with bounded reads).

    Every count is checked before anything is allocated or iterated: against the bytes that are
    really there, for signs, and, for a constant sample size, against the shards' byte counts.
    Any damage is a FormatError naming `where`. Wrapped sizes written by the original are
    returned as they are stored (the reader repairs them).
    """
    source = _Source(data, where)
    magic, version, num_shards, total_samples, total_bytes = _HEAD.unpack(source.take(_HEAD.size, "header"))
    if magic != MAGIC:
        raise FormatError(f"{where}: bad magic 0x{magic:08X}, expected 0x{MAGIC:08X}; not an .mds index")
    if version != VERSION:
        raise FormatError(f"{where}: unsupported version {version}, expected {VERSION}")
    if total_samples < 0:
        raise FormatError(f"{where}: header gives a negative sample count {total_samples}")
    if total_bytes < 0:
        raise FormatError(f"{where}: header gives a negative byte count {total_bytes}")
    samples_per_shard = tuple(_from_little_endian("q", source.take(8 * num_shards, "samples per shard")))
    bytes_per_shard = tuple(_from_little_endian("q", source.take(8 * num_shards, "bytes per shard")))
    for shard_number, (count, size) in enumerate(zip(samples_per_shard, bytes_per_shard)):
        if count < 0:
            raise FormatError(f"{where}: shard {shard_number} has a negative sample count {count}")
        if size < 0:
            raise FormatError(f"{where}: shard {shard_number} has a negative byte count {size}")
    if sum(samples_per_shard) != total_samples:
        raise FormatError(f"{where}: shards hold {sum(samples_per_shard)} samples, header says {total_samples}")
    if sum(bytes_per_shard) != total_bytes:
        raise FormatError(f"{where}: shards hold {sum(bytes_per_shard)} bytes, header says {total_bytes}")
    (size_format,) = struct.unpack("<i", source.take(4, "size format"))
    if size_format == CONSTANT_SIZE_FORMAT:
        (constant,) = struct.unpack("<q", source.take(8, "constant sample size"))
        if constant < 0:
            raise FormatError(f"{where}: negative constant sample size {constant}")
        for shard_number, (count, size) in enumerate(zip(samples_per_shard, bytes_per_shard)):
            if constant * count != size:
                raise FormatError(
                    f"{where}: constant sample size {constant} times shard {shard_number}'s "
                    f"{count} samples is not its {size} bytes"
                )
        sample_sizes: Sequence[int] = _ConstantSizes(constant, total_samples)
    elif size_format in SIZE_TYPECODES:
        sample_sizes = _from_little_endian(
            SIZE_TYPECODES[size_format], source.take(size_format * total_samples, "sample sizes")
        )
    else:
        raise FormatError(f"{where}: unknown size format {size_format}")
    (num_fields,) = struct.unpack("<i", source.take(4, "field count"))
    if num_fields < 0:
        raise FormatError(f"{where}: negative field count {num_fields}")
    name_lengths = _from_little_endian("i", source.take(4 * num_fields, "field name lengths"))
    for field_number, length in enumerate(name_lengths):
        if length < 0:
            raise FormatError(f"{where}: field {field_number}'s name has a negative length {length}")
    names = source.take(sum(name_lengths), "field names")
    fields = []
    offset = 0
    for field_number, length in enumerate(name_lengths):
        try:
            fields.append(bytes(names[offset : offset + length]).decode("utf-8"))
        except UnicodeDecodeError:
            raise FormatError(f"{where}: field {field_number}'s name is not UTF-8") from None
        offset += length
    trailing = source.trailing()
    if trailing:
        raise FormatError(f"{where}: {trailing} of trailing garbage after the field names")
    if total_samples and not num_fields:
        raise FormatError(f"{where}: {total_samples} samples but no fields")
    if size_format == CONSTANT_SIZE_FORMAT and total_samples and constant < SIZE_HEADER_ITEM * num_fields:
        raise FormatError(
            f"{where}: constant sample size {constant} is smaller than the size header of "
            f"{num_fields} fields ({SIZE_HEADER_ITEM * num_fields} bytes)"
        )
    return Index(samples_per_shard, bytes_per_shard, sample_sizes, tuple(fields), size_format)


class _ConstantSizes(Sequence[int]):
    """`total` samples of one size, without a list of them."""

    def __init__(self, size: int, total: int) -> None:
        self.size, self.total = size, total

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[int]:
        return itertools.repeat(self.size, self.total)  # not Sequence's per-item __getitem__ loop

    def __getitem__(self, item: int | slice) -> Any:
        if isinstance(item, slice):
            return [self.size] * len(range(*item.indices(self.total)))
        if not -self.total <= item < self.total:
            raise IndexError(item)
        return self.size


def decode_record(record: bytes | memoryview, fields: Sequence[str], where: str) -> dict[str, bytes]:
    """Split one record into its field values, checking its size header against its length."""
    header = record_header(len(fields))
    if len(record) < header.size:
        raise ValueError(f"{where}: record of {len(record)} bytes is shorter than its size header")
    sizes = header.unpack_from(record)
    if header.size + sum(sizes) != len(record) or min(sizes, default=0) < 0:
        raise ValueError(
            f"{where}: record header says fields of {list(sizes)} bytes, "
            f"which does not fill the {len(record)} bytes the index gives it"
        )
    sample = {}
    offset = header.size
    for field, size in zip(fields, sizes):
        sample[field] = bytes(record[offset : offset + size])
        offset += size
    return sample
