"""Partitions whose raw batch is gone: found, compared with the others, and removed (`mds-assets prune`).

Storage decides what is published (every partition under `<out>/partitions/`), so a batch
removed from the raw URL stays published until its partition is removed; and a batch renamed
(same content, new name, so a new partition key) would be published twice: under its old
partition and its new one. A build refuses to publish that, naming both partitions.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from writer.lock import DatasetLock
from writer.storage import Storage
from writer.verify import read_manifest

from .layout import partition_url, stored_partitions
from .raw_sources import RawBatch
from .stamps import read_stamp, stamp_members


def partitions_without_batch(
    out_url: str, storage_options: dict[str, Any] | None, batches: Collection[RawBatch]
) -> list[str]:
    """Keys of the partition folders under `<out>/partitions/` (complete or not) none of whose raw
    files is listed any more: by the member files its stamp records (a partition is a group of
    files), or by its key when it has no readable stamp."""
    names = {batch.name for batch in batches}
    keys = {batch.partition_key for batch in batches}
    complete, incomplete = stored_partitions(out_url, storage_options)
    gone = []
    for key in complete + incomplete:
        stamp = read_stamp(partition_url(out_url, key), storage_options)
        members = stamp_members(stamp) if stamp is not None else []
        if not (names.intersection(members) if members else key in keys):
            gone.append(key)
    return sorted(gone)


def repeated_partitions(
    out_url: str, storage_options: dict[str, Any] | None, orphans: Collection[str], others: Collection[str]
) -> dict[str, str]:
    """`{orphan key: key of another partition holding the very same shards}` (samples, bytes,
    CRC-32 of every shard, from the manifests): a renamed batch. Empty partitions repeat nothing."""
    by_content: dict[tuple[Any, ...], str] = {}
    for key in sorted(others):
        content = _content(out_url, storage_options, key)
        if content:
            by_content.setdefault(content, key)
    repeated = {}
    for key in sorted(orphans):
        content = _content(out_url, storage_options, key)
        if content and content in by_content:
            repeated[key] = by_content[content]
    return repeated


def _content(out_url: str, storage_options: dict[str, Any] | None, key: str) -> tuple[Any, ...]:
    try:
        manifest = read_manifest(Storage(partition_url(out_url, key), storage_options))
    except (OSError, ValueError):
        return ()
    return tuple((shard.samples, shard.bytes, shard.checksum) for shard in manifest.shards)


def remove_partition(out_url: str, storage_options: dict[str, Any] | None, key: str) -> None:
    """Delete `<out>/partitions/<key>/` (under its lock: never while a build or publish uses it).
    The published dataset keeps its shards (hard links or copies) until the next publish."""
    storage = Storage(partition_url(out_url, key), storage_options)
    with DatasetLock(storage, "mds-assets prune removing a partition whose raw batch is gone"):
        storage.remove_all()
