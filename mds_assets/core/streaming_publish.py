"""Publish the streaming format's partitions as one dataset at the output root, by reference.

The published `<out>/index.json` lists every partition's shards where they are
(`partitions/<key>/<generation>/shard.00000.mds`), in partition-key order: publishing writes
that one file (`writer.reference_index`). Then the generations the previous index referred to
and the new one does not are removed (`core.generations`), for the partitions whose generation
changed only — a publish that changes nothing, or one partition, tidies nothing, or one.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from writer.lock import LockWait
from writer.reference_index import ReferencePublish, publish_by_reference

from .generations import generations_by_partition, remove_unreferenced_generations
from .layout import partition_url

TIDY_THREADS = 16  # partitions tidied at once (each a few requests on an object store)


def publish_streaming(
    out_url: str, keys: list[str], storage_options: dict[str, Any] | None, lock_wait: LockWait | None = None
) -> ReferencePublish:
    """Publish the partitions `keys` at `out_url`; then remove the generations it stopped referring to."""
    result = publish_by_reference([partition_url(out_url, key) for key in keys], out_url, storage_options, lock_wait)
    if result.changed:
        before, after = generations_by_partition(result.previous), generations_by_partition(result.index)
        # a partition no longer published went with its folder
        stale = [key for key in sorted(set(before) & set(keys)) if before[key] - after.get(key, set())]
        with ThreadPoolExecutor(max_workers=max(1, min(TIDY_THREADS, len(stale)))) as pool:
            list(pool.map(lambda key: remove_unreferenced_generations(out_url, key, storage_options), stale))
    return result
