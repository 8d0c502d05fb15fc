"""MDS v2's shard compressions, by mosaicml-streaming's names: `zstd`, `zstd:N`, `gz`, `gz:N`,
`bz2`, `bz2:N`, `br`, `br:N`, `snappy`.

The name as given is what the index records (`"compression": "zstd:7"`); its family gives the
file extension (`shard.00000.mds.zstd`) and readers need only the family. Default levels are
S's: zstd 3, gz 9, bz2 9, br 11. zstd is the `zstandard` package, fed a shard in batches as it
is assembled (`stream`), so no shard is ever copied whole into one buffer; its frames record
their size, as S's reader (the `zstd` package) needs. gz is deterministic gzip (mtime 0,
writer/compression.py), where S's carries the time of writing. br and snappy need their
packages (the `mdsv2` extra).
"""

from __future__ import annotations

import bz2
import gzip
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import compression as v1_compression

_DEFAULT_LEVELS = {"zstd": 3, "gz": 9, "bz2": 9, "br": 11}
_LEVELS = {"zstd": range(1, 23), "gz": range(0, 10), "bz2": range(1, 10), "br": range(0, 12)}
_PACKAGES = {"zstd": ("zstandard", "zstandard"), "br": ("brotli", "Brotli"), "snappy": ("snappy", "python-snappy")}
FAMILIES = ("br", "bz2", "gz", "snappy", "zstd")


@dataclass(frozen=True)
class ShardCompression:
    """One compression setting: `setting` as recorded, `extension` of the files it writes."""

    setting: str
    extension: str
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes], bytes]
    # (size of the input) -> an object with `compress(batch) -> bytes` and `flush() -> bytes` that
    # writes one file from the input given in batches; None: this family compresses whole inputs only
    stream: Callable[[int], Any] | None = None


def allowed() -> str:
    levels = ", ".join(f"{family}:{_LEVELS[family].start}..{_LEVELS[family].stop - 1}" for family in _LEVELS)
    return f"None, {', '.join(FAMILIES)}, or with a level: {levels}"


def parse_shard_compression(value: str | None) -> ShardCompression | None:
    """S's compression names -> a ShardCompression; None or "" -> None (no compression)."""
    if not value:
        return None
    if not isinstance(value, str):
        raise TypeError(f"compression must be a str or None, not {type(value).__name__}; allowed: {allowed()}")
    family, colon, level_text = value.partition(":")
    if family not in FAMILIES:
        raise ValueError(f"unknown compression {value!r}; allowed: {allowed()}")
    level = _DEFAULT_LEVELS.get(family)
    if colon:
        levels = {str(number): number for number in _LEVELS.get(family, ())}
        if level_text not in levels:
            raise ValueError(f"bad compression level in {value!r}; allowed: {allowed()}")
        level = levels[level_text]
    compress, decompress = _functions(family, level)
    return ShardCompression(value, family, compress, decompress, _stream(family, level))


def decompressor(extension: str, where: str) -> Callable[[bytes], bytes]:
    """What unpacks a file of this family (a reader needs no level)."""
    if extension not in FAMILIES:
        raise ValueError(f"{where}: unknown compression {extension!r}")
    return _functions(extension, _DEFAULT_LEVELS.get(extension))[1]


def _functions(family: str, level: int | None) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    if family == "gz":
        return v1_compression.parse_compression(f"gz:{level}").compress, gzip.decompress
    if family == "bz2":
        return (lambda data: bz2.compress(data, level or 9)), bz2.decompress
    module = _module(family)
    if family == "zstd":
        return (
            lambda data: module.ZstdCompressor(level=level).compress(data),
            lambda data: module.ZstdDecompressor().decompressobj().decompress(data),
        )
    if family == "br":
        return (lambda data: module.compress(data, quality=level)), module.decompress
    return module.compress, module.decompress


def _stream(family: str, level: int | None) -> Callable[[int], Any] | None:
    if family != "zstd":
        return None
    module = _module(family)
    return lambda size: module.ZstdCompressor(level=level, write_content_size=True).compressobj(size=size)


def _module(family: str) -> Any:
    name, package = _PACKAGES[family]
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ValueError(
            f"compression {family!r} needs the {package} package (pip install 'mds-assets[mdsv2]')"
        ) from None
