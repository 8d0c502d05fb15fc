"""Compression schemes by name: a small registry, so adding one is one entry, not an if-chain."""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, cast

COMPRESSION_FILE = "compression.txt"

_fast_crc32: Callable[[bytes], int] | None
try:  # the optional `fast` extra: zlib-ng's CRC-32 (the same values as zlib's, ~10x faster)
    from zlib_ng.zlib_ng import crc32 as _fast_crc32
except ImportError:
    _fast_crc32 = None
crc32: Callable[[bytes], int] = zlib.crc32 if _fast_crc32 is None else _fast_crc32
CRC32_IMPLEMENTATION = "zlib" if _fast_crc32 is None else "zlib-ng"


DECOMPRESSION_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


@dataclass(frozen=True)
class Compression:
    """How a file is stored: its name suffix and the functions that pack and unpack its bytes.

    `NONE` is a member like any other (no suffix, bytes as they are), so code that stores or
    reads files never asks whether there is a compression: it uses the one it has.
    """

    name: str  # canonical, e.g. "gz:6" for "gz"; "none"
    scheme: str  # as written to compression.txt, e.g. "gz"; "none" (no compression.txt)
    suffix: str
    compress: Callable[[bytes], bytes]
    decompress_bytes: Callable[[bytes, int | None], bytes]  # (data, limit): at most limit + 1 bytes out
    open_stream: Callable[[bytes], BinaryIO]  # inflated as it is read

    @property
    def is_none(self) -> bool:
        return self.scheme == NONE_SCHEME

    @property
    def setting(self) -> str | None:
        """As recorded in a manifest: the canonical name, or None for no compression."""
        return None if self.is_none else self.name

    def decompress(self, data: bytes, where: str, expected: int | None = None) -> bytes:
        """Unpack a stored file that should hold `expected` bytes; damage becomes a ValueError naming it.

        Inflates at most `expected + 1` bytes, so a file that would inflate to far more (a
        "gzip bomb") costs no more memory than a sound one: it comes back one byte too long.
        Without `expected` (only for data from a trusted source) there is no bound.
        """
        try:
            return self.decompress_bytes(data, expected)
        except DECOMPRESSION_ERRORS as error:
            raise ValueError(f"{where}: corrupt {self.scheme} data ({error})") from None


def _gunzip(data: bytes, limit: int | None) -> bytes:
    """gzip.decompress (every member, nothing after them), but stopping after `limit + 1` bytes."""
    if limit is None:
        return gzip.decompress(data)
    out = bytearray()
    rest = data
    while True:
        member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out += member.decompress(rest, limit + 1 - len(out))
        if len(out) > limit:
            return bytes(out)
        if not member.eof:
            raise EOFError("compressed data ended before the end-of-stream marker was reached")
        rest = member.unused_data
        if not rest:
            return bytes(out)


def _gzip_compressor(level: int) -> Callable[[bytes], bytes]:
    """gzip at `level` with mtime 0 (the output is a function of the input alone, so checksums
    are reproducible). zlib deflates either way; with zlib-ng at hand its faster CRC-32 makes
    the trailer, around zlib's raw deflate and zlib's own header: the very same bytes."""
    if _fast_crc32 is None:
        return lambda data: gzip.compress(data, compresslevel=level, mtime=0)
    header = zlib.compress(b"", level, wbits=31)[:10]  # zlib's header for this level and platform
    fast_crc32 = _fast_crc32

    def compress(data: bytes) -> bytes:
        trailer = _GZIP_TRAILER.pack(fast_crc32(data), len(data) & 0xFFFFFFFF)
        return b"".join((header, zlib.compress(data, level, wbits=-15), trailer))

    return compress


_GZIP_TRAILER = struct.Struct("<LL")


def _gzip(level: int) -> Compression:
    return Compression(
        name=f"gz:{level}",
        scheme="gz",
        suffix=".gz",
        compress=_gzip_compressor(level),
        decompress_bytes=_gunzip,
        open_stream=lambda data: cast(BinaryIO, gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb")),
    )


NONE_SCHEME = "none"
NONE = Compression(
    name=NONE_SCHEME,
    scheme=NONE_SCHEME,
    suffix="",
    compress=lambda data: data,
    decompress_bytes=lambda data, limit: data,
    open_stream=lambda data: io.BytesIO(data),
)

SCHEMES: dict[str, Callable[[int | None], Compression]] = {
    "gz": lambda level: _gzip(6 if level is None else level),
}
LEVELS: dict[str, range] = {"gz": range(0, 10)}
ALLOWED = "None, 'gz' or 'gz:0' ... 'gz:9'"
SUFFIXES = ("", *(scheme(None).suffix for scheme in SCHEMES.values()))  # every file-name suffix a scheme gives


def parse_compression(value: str | None) -> Compression:
    """`None`, `'none'`, `'gz'` or `'gz:N'` -> a Compression (`NONE` for none); anything else is
    a ValueError naming what is allowed. Parse once, at the edge; pass the value on."""
    if value is None or value == NONE_SCHEME:
        return NONE
    if not isinstance(value, str):
        raise TypeError(f"compression must be a str or None, not {type(value).__name__}; allowed: {ALLOWED}")
    scheme, colon, level_text = value.partition(":")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown compression {value!r}; allowed: {ALLOWED}")
    level = None
    if colon:
        # Exactly the canonical spellings: no "gz:", "gz:09", " 9" or non-ASCII digits such as "gz:\u0663".
        levels = {str(number): number for number in LEVELS[scheme]}
        if level_text not in levels:
            raise ValueError(f"bad compression level in {value!r}; allowed: {ALLOWED}")
        level = levels[level_text]
    return SCHEMES[scheme](level)


def from_setting(setting: str | None, where: str) -> Compression:
    """The Compression a manifest records (None: none); a bad record names the file."""
    try:
        return parse_compression(setting)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {error}") from None


def scheme_from_file(text: str, where: str) -> Compression:
    """The Compression named by a dataset's `compression.txt` (readers need only the scheme)."""
    scheme = text.strip()
    if scheme not in SCHEMES:
        raise ValueError(f"{where}: unknown compression scheme {scheme!r}")
    return SCHEMES[scheme](None)
