"""The two formats an output can be written in, what each allows, and which one an output holds.

* `composer` (the default): Composer's MDS v1 — `index.mds` over shards `000000.mds[.gz]` —
  read by Composer 0.10.1's `StreamingDataset` and `writer.MDSDataset`; published by placing
  every partition's shards under the output root (hard links, server-side copies).
* `streaming`: mosaicml-streaming's MDS v2 — `index.json` over `shard.NNNNN.mds[.zstd]` — read
  by `streaming.StreamingDataset`; published by reference: one `index.json` whose shard
  basenames point into the partitions (`partitions/<key>/<generation>/shard.00000.mds`).

One output holds one format. Switching the format of an output that already holds a dataset is
refused, naming the setting and the files found: the two indexes side by side would serve two
different datasets to two kinds of reader, and neither build could tell which files are its own.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any, Literal

from writer.compression import parse_compression
from writer.storage import Storage

from .layout import partition_url

Format = Literal["composer", "streaming"]
FORMATS: tuple[Format, ...] = ("composer", "streaming")
DEFAULT_FORMAT: Format = "composer"

COMPOSER_INDEX_PREFIX = "index.mds"  # index.mds, index.mds.gz
STREAMING_INDEX = "index.json"

# mosaicml-streaming's compressions: name -> (levels accepted, the level the bare name means)
STREAMING_COMPRESSIONS: dict[str, tuple[range | None, int | None]] = {
    "zstd": (range(1, 23), 3),
    "gz": (range(0, 10), 9),
    "br": (range(0, 12), 11),
    "bz2": (range(1, 10), 9),
    "snappy": (None, None),
}
_COMPRESSION = re.compile(r"\A([a-z0-9]+)(?::(\d{1,2}))?\Z")


class OutputFormatError(ValueError):
    """A format setting that does not fit the output or the other settings; the message names them."""


def canonical_compression(format: Format, compression: str | None) -> str | None:
    """The one spelling of a compression setting for `format` ("zstd" is "zstd:3"), or a clear
    error naming the setting and what the format accepts."""
    if format == "composer":
        try:
            return parse_compression(compression).setting
        except ValueError as error:
            hint = "; zstd, br, bz2 and snappy need format 'streaming'" if _streaming_name(compression) else ""
            raise OutputFormatError(f"compression: {error} (format 'composer'){hint}") from None
    return _streaming_compression(compression)


def _streaming_name(compression: str | None) -> bool:
    match = _COMPRESSION.match(compression or "")
    return bool(match) and match.group(1) in STREAMING_COMPRESSIONS and match.group(1) != "gz"


def _streaming_compression(compression: str | None) -> str | None:
    if compression in (None, "", "none"):
        return None
    match = _COMPRESSION.match(compression)
    known = ", ".join(
        f"{name}" + (f", {name}:{levels.start}..{name}:{levels.stop - 1}" if levels else "")
        for name, (levels, _) in STREAMING_COMPRESSIONS.items()
    )
    if match is None or match.group(1) not in STREAMING_COMPRESSIONS:
        raise OutputFormatError(
            f"compression: unknown compression {compression!r} for format 'streaming'; known: {known}"
        )
    name, level = match.group(1), match.group(2)
    levels, default = STREAMING_COMPRESSIONS[name]
    if levels is None:
        if level is not None:
            raise OutputFormatError(f"compression: {name} takes no level, got {compression!r}")
        return name
    if level is not None and int(level) not in levels:
        raise OutputFormatError(
            f"compression: level {level} of {name} is out of range {levels.start}..{levels.stop - 1}"
        )
    return f"{name}:{int(level) if level is not None else default}"


def index_format(names: list[str] | set[str]) -> Format | None:
    """The format of the dataset in a folder, from its listing: None when it holds no index."""
    if STREAMING_INDEX in names:
        return "streaming"
    if any(name == COMPOSER_INDEX_PREFIX or name.startswith(COMPOSER_INDEX_PREFIX + ".") for name in names):
        return "composer"
    return None


def refuse_format_switch(
    out_url: str, format: Format, storage_options: dict[str, Any] | None, partition_key: str | None = None
) -> None:
    """Raise when the output (its published index, or the partition about to be written) holds
    a dataset of the other format; nothing is written before this is asked."""
    places = [out_url]
    if partition_key is not None:
        places.append(partition_url(out_url, partition_key))
    for url in places:
        found = index_format(Storage(url, storage_options).list_names())
        if found is not None and found != format:
            raise OutputFormatError(format_switch_message(url, found, format, out_url))


def format_switch_message(url: str, found: Format, wanted: Format, out_url: str) -> str:
    index = STREAMING_INDEX if found == "streaming" else COMPOSER_INDEX_PREFIX
    return (
        f"{posixpath.join(url.rstrip('/'), index)} is a {found}-format dataset and the format setting "
        f"(MDS_FORMAT, --format) is {wanted!r}: one output holds one format. Write the {wanted} format "
        f"to another output URL, or delete {out_url} to rebuild it in the {wanted} format"
    )
