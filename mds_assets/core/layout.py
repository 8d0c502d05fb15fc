"""Where partitions live under the output URL: `<out>/partitions/<key>/`, their staging folders,
and which of them hold a complete dataset (storage is the one record of what is built).

A partition key becomes a directory name, so it is checked wherever a key is turned into a
path (keys can also be typed into the UI): no key can address anything outside
`<out>/partitions/`.
"""

from __future__ import annotations

import posixpath
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from writer.published import has_dataset
from writer.storage import Storage

PARTITIONS_DIR = "partitions"
PARTITIONS_SIDECAR = "mds_partitions.json"  # beside the published dataset: the partitions it was published from
STAGING_DIR = ".staging"  # starts with '.', so no partition key can be it
LISTINGS_AT_ONCE = 16  # partitions listed at once: on an object store a listing mostly waits
_SAFE_KEY = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z")  # \Z: "$" would accept a trailing newline


def check_partition_key(key: str) -> str:
    if not _SAFE_KEY.match(key):
        raise ValueError(
            f"unsafe partition key {key!r}: keys are letters, digits, '.', '_' and '-', not starting with '.' or '-'"
        )
    return key


def partition_url(out_url: str, key: str) -> str:
    """Where a partition's dataset lives: `<out>/partitions/<key>`, never outside `<out>`."""
    return posixpath.join(out_url.rstrip("/"), PARTITIONS_DIR, check_partition_key(key))


def staging_url(out_url: str, key: str) -> str:
    """Where a partition is built before it replaces `partition_url(out_url, key)`."""
    return posixpath.join(out_url.rstrip("/"), PARTITIONS_DIR, STAGING_DIR, check_partition_key(key))


def stored_partitions(out_url: str, storage_options: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    """What is under `<out>/partitions/`, the one source of truth for what gets published:
    (keys whose dataset is complete, keys whose directory holds no dataset), each sorted.

    A directory without an index is a build that was interrupted (or a dataset removed in
    part); it is reported, never silently left out.
    """
    root = Storage(posixpath.join(out_url.rstrip("/"), PARTITIONS_DIR), storage_options)
    keys = [
        name
        for name, (kind, _size) in sorted(root.entries().items())
        if kind == "directory" and name != STAGING_DIR and _SAFE_KEY.match(name)  # a stray file is no partition
    ]

    def listed(key: str) -> list[str]:  # one listing per partition
        return Storage(partition_url(out_url, key), storage_options).list_names()

    with ThreadPoolExecutor(max_workers=max(1, min(LISTINGS_AT_ONCE, len(keys)))) as pool:
        listings = list(pool.map(listed, keys))
    complete = [key for key, names in zip(keys, listings) if has_dataset(root, names)]
    incomplete = [key for key, names in zip(keys, listings) if names and not has_dataset(root, names)]
    return complete, incomplete


def stored_partition_names(out_url: str, storage_options: dict[str, Any] | None) -> set[str]:
    """The names of the folders under `<out>/partitions/` that can be partitions (one listing;
    none when the folder does not exist yet)."""
    entries = Storage(posixpath.join(out_url.rstrip("/"), PARTITIONS_DIR), storage_options).entries()
    return {name for name, (kind, _) in entries.items() if kind == "directory" and _is_partition_name(name)}


def _is_partition_name(name: str) -> bool:
    return name != STAGING_DIR and _SAFE_KEY.match(name) is not None
