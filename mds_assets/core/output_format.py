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
from typing import Any, Literal

from writer.compression import parse_compression
from writer.mdsv2_compression import parse_shard_compression
from writer.storage import Storage

from .layout import partition_url

Format = Literal["composer", "streaming"]
FORMATS: tuple[Format, ...] = ("composer", "streaming")
DEFAULT_FORMAT: Format = "composer"

COMPOSER_INDEX_PREFIX = "index.mds"  # index.mds, index.mds.gz
STREAMING_INDEX = "index.json"


class OutputFormatError(ValueError):
    """A format setting that does not fit the output or the other settings; the message names them."""


def canonical_compression(format: Format, compression: str | None) -> str | None:
    """The compression setting as recorded, or a clear error naming the setting and what the
    format accepts. Composer: one spelling per setting ("gz" is "gz:6"). Streaming: the name as
    given, as mosaicml-streaming records it in `index.json` ("zstd" and "zstd:3" write the same
    shards under different index entries)."""
    if format == "composer":
        try:
            return parse_compression(compression).setting
        except ValueError as error:
            hint = "; zstd, br, bz2 and snappy need format 'streaming'" if _is_streaming_only(compression) else ""
            raise OutputFormatError(f"compression: {error} (format 'composer'){hint}") from None
    try:
        parsed = parse_shard_compression(compression)
    except (TypeError, ValueError) as error:
        raise OutputFormatError(f"compression: {error} (format 'streaming')") from None
    return parsed.setting if parsed is not None else None


def _is_streaming_only(compression: str | None) -> bool:
    try:
        parsed = parse_shard_compression(compression)
    except (TypeError, ValueError):
        return False
    return parsed is not None and parsed.extension != "gz"


def index_format(names: list[str] | set[str]) -> Format | None:
    """The format of the dataset in a folder, from its listing: None when it holds no index."""
    if STREAMING_INDEX in names:
        return "streaming"
    if any(name == COMPOSER_INDEX_PREFIX or name.startswith(COMPOSER_INDEX_PREFIX + ".") for name in names):
        return "composer"
    return None


def refuse_format_switch(
    out_url: str,
    format: Format,
    storage_options: dict[str, Any] | None,
    partition_key: str | None = None,
    root_names: list[str] | None = None,
) -> None:
    """Raise when the output (its published index, or the partition about to be written) holds
    a dataset of the other format; nothing is written before this is asked. `root_names`: the
    output root's listing when the caller has it."""
    places = [out_url]
    if partition_key is not None:
        places.append(partition_url(out_url, partition_key))
    for url in places:
        names = root_names if url == out_url and root_names is not None else Storage(url, storage_options).list_names()
        found = index_format(names)
        if found is not None and found != format:
            raise OutputFormatError(format_switch_message(url, found, format, out_url))


def format_switch_message(url: str, found: Format, wanted: Format, out_url: str) -> str:
    index = STREAMING_INDEX if found == "streaming" else COMPOSER_INDEX_PREFIX
    return (
        f"{posixpath.join(url.rstrip('/'), index)} is a {found}-format dataset and the format setting "
        f"(MDS_FORMAT, --format) is {wanted!r}: one output holds one format. Write the {wanted} format "
        f"to another output URL, or delete {out_url} to rebuild it in the {wanted} format"
    )
