"""Compression schemes by name: a small registry, so adding one is one entry, not an if-chain."""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, cast

from zlib_ng import zlib_ng

COMPRESSION_FILE = "compression.txt"

# zlib-ng (the maintained `zlib-ng` bindings): the same CRC-32 values as zlib's, ~10x faster.
crc32: Callable[[bytes | bytearray | memoryview], int] = zlib_ng.crc32
CRC32_IMPLEMENTATION = "zlib-ng"
# zlib-ng's deflate levels 1-6 are strategies of its own (quick, fast, medium) that compress far
# less than zlib's same levels (+80 % on the writer benchmark's data); its levels 7-9 are zlib's
# lazy matching, faster. So a gz level of 6 or more deflates with zlib-ng at that level, but at
# least 7: the size stays within ~2 % of zlib's at the level asked for (-0.1 % on the benchmark's
# data, -0.6 % on JSONL, -0.7 % on Python source), in 40-80 % of the time. Below 6, zlib
# deflates. Either way the file is standard gzip and decompresses to the same bytes.
FAST_DEFLATE_FROM_LEVEL = 6
DEFLATE_IMPLEMENTATION = f"zlib-ng from gz:{FAST_DEFLATE_FROM_LEVEL} (at level 7 or more), zlib below"


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
    """gzip at `level` with mtime 0, so the output is a function of the input alone and
    checksums are reproducible: zlib's gzip header, the raw deflate (`FAST_DEFLATE_FROM_LEVEL`'s
    rule) and a trailer with zlib-ng's CRC-32."""
    header = zlib.compress(b"", level, wbits=31)[:10]  # zlib's header for this level and platform
    if level >= FAST_DEFLATE_FROM_LEVEL:
        fast_level = max(level, 7)

        def deflate(data: bytes) -> bytes:
            return zlib_ng.compress(data, fast_level, wbits=-15)
    else:

        def deflate(data: bytes) -> bytes:
            return zlib.compress(data, level, wbits=-15)

    def compress(data: bytes) -> bytes:
        trailer = _GZIP_TRAILER.pack(crc32(data), len(data) & 0xFFFFFFFF)
        return b"".join((header, deflate(data), trailer))

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


def scheme_from_file(text: str, where: str) -> Compression:
    """The Compression named by a dataset's `compression.txt` (readers need only the scheme)."""
    scheme = text.strip()
    if scheme not in SCHEMES:
        raise ValueError(f"{where}: unknown compression scheme {scheme!r}")
    return SCHEMES[scheme](None)
