"""A partition in the streaming format: each build a new generation folder, never a file rewritten.

`<out>/partitions/<key>/` holds:

* generation folders, `<UTC time>-<random>/` (e.g. `20261202T051500Z-1a2b3c4d/`), each one
  complete MDS v2 dataset written by `writer.MDSWriter` (its `index.json` last);
* `index.json`, the partition's dataset: an index by reference over one generation's shards
  (`<generation>/shard.00000.mds`), so the partition reads in `streaming.StreamingDataset` too;
* `mds_source.json`, what the partition was built from (core.stamps), written after its index.

A rebuild writes a new generation, then replaces the partition's `index.json` (one atomic
write). The dataset published at `<out>/index.json` refers to shards by their generation, so
no build ever changes a file it refers to. A generation is removed only when neither the
partition's index nor the published one refers to it, and no writer holds it (its lock):
after a rebuild's promotion (what failed builds left), and after a publish (what it replaced).
"""

from __future__ import annotations

import posixpath
import re
import time
import uuid
import warnings
from typing import Any

from writer.lock import DatasetLock, DatasetLockedError
from writer.reference_index import V2Index, read_index
from writer.storage import Storage

from .layout import PARTITIONS_DIR, partition_url

_GENERATION = re.compile(r"\A\d{8}T\d{6}Z-[0-9a-f]{8}\Z")


def new_generation() -> str:
    """A folder name no other build of the partition uses; names sort by the time of the build."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"


def is_generation(name: str) -> bool:
    """Only folders named like this are ever removed: never anything a person put there."""
    return bool(_GENERATION.match(name))


def generation_url(out_url: str, key: str, generation: str) -> str:
    return posixpath.join(partition_url(out_url, key), generation)


def generations_referenced(index: V2Index | None, prefix: str) -> set[str]:
    """The generation folders directly under `prefix` that an index's shards are in."""
    if index is None:
        return set()
    start = prefix.rstrip("/") + "/" if prefix else ""
    found = set()
    for basename in index.basenames():
        if basename.startswith(start):
            generation = basename[len(start) :].split("/", 1)[0]
            if is_generation(generation):
                found.add(generation)
    return found


def generations_by_partition(index: V2Index | None) -> dict[str, set[str]]:
    """`{partition key: generations}` that a published index refers to, in one pass over its shards."""
    found: dict[str, set[str]] = {}
    for basename in index.basenames() if index is not None else ():
        parts = basename.split("/")
        if len(parts) >= 4 and parts[0] == PARTITIONS_DIR and is_generation(parts[2]):
            found.setdefault(parts[1], set()).add(parts[2])
    return found


def published_prefix(key: str) -> str:
    """Where the published index finds a partition's files: `partitions/<key>`."""
    return f"{PARTITIONS_DIR}/{key}"


def remove_unreferenced_generations(out_url: str, key: str, storage_options: dict[str, Any] | None) -> list[str]:
    """Remove the partition's generations no index refers to; returns their names. Best effort:
    anything that stops it (the partition held by a publish, an unreadable index, storage) is a
    warning and removes nothing more — what is left is removed by a later build or publish."""
    partition = Storage(partition_url(out_url, key), storage_options)
    removed: list[str] = []
    try:
        with DatasetLock(partition, "removing generations no index refers to"):
            keep = generations_referenced(read_index(partition), "") | generations_referenced(
                read_index(Storage(out_url, storage_options)), published_prefix(key)
            )
            for name, (kind, _size) in sorted(partition.entries().items()):
                if kind == "directory" and is_generation(name) and name not in keep:
                    if _remove_generation(Storage(posixpath.join(partition.url, name), storage_options)):
                        removed.append(name)
    except DatasetLockedError:
        pass  # a publish or another build holds the partition: the next one tidies up
    except Exception as error:
        warnings.warn(
            f"could not remove the unused generations of {partition.url} ({error}); a later build or publish does",
            stacklevel=2,
        )
    return removed


def _remove_generation(generation: Storage) -> bool:
    """Remove a generation unless a writer holds it (a build of the partition running now)."""
    try:
        with DatasetLock(generation, "removing it: no index refers to it"):
            generation.remove_all()
    except DatasetLockedError:
        return False
    return True
