"""Partitions whose raw batch is gone: found, compared with the others, and removed (`mds-assets prune`).

Storage decides what is published (every partition under `<out>/partitions/`), so a batch
removed from the raw URL stays published until its partition is removed; and a batch renamed
(same content, new name, so a new partition key) would be published twice: under its old
partition and its new one. A build refuses to publish that, naming both partitions.
"""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from writer.lock import DatasetLock
from writer.storage import Storage
from writer.verify import read_manifest

from .layout import partition_url, stored_partitions
from .member_contents import stamp_contents
from .raw_sources import RawBatch
from .stamps import CONCURRENT_READS, read_stamp, stamp_members


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
    """`{orphan key: what of it another partition holds}`, for the orphans none of whose files a
    partition of `others` holds by name (one that shares a file was regrouped: publishing
    supersedes it, `core.superseded`): the very same shards (samples, bytes, CRC-32 of every
    shard, from the manifests: a renamed batch), or the samples of one of its files under another
    name (a file renamed into another group: the stamps' `contents`). Empty partitions and files
    repeat nothing."""
    if not orphans:
        return {}
    stamps = _stamps(out_url, storage_options, sorted(set(others) | set(orphans)))
    held = {name for key in others for name in stamp_members(stamps[key] or {})}  # file names the kept partitions hold
    orphaned = [key for key in sorted(orphans) if not held.intersection(stamp_members(stamps[key] or {}))]
    if not orphaned:
        return {}
    by_content: dict[tuple[Any, ...], str] = {}  # a partition's shards -> the first partition holding them
    by_samples: dict[tuple[int, int, int], str] = {}  # a file's samples -> where they are held
    for key in sorted(others):
        by_content.setdefault(_content(out_url, storage_options, key), key)
        for name, samples in stamp_contents(stamps[key]).items():
            by_samples.setdefault(samples, f"partition {key} holds as {name}")
    by_content.pop((), None)  # an empty partition repeats nothing
    repeated = {}
    for key in orphaned:
        content = _content(out_url, storage_options, key)
        files = [
            f"{name}, which {by_samples[samples]}"
            for name, samples in stamp_contents(stamps[key]).items()
            if samples in by_samples
        ]
        if content in by_content:
            repeated[key] = f"the same samples as partition {by_content[content]}"
        elif files:
            repeated[key] = f"the samples of its file {files[0]}"
    return repeated


def _stamps(out_url: str, storage_options: dict[str, Any] | None, keys: list[str]) -> dict[str, dict[str, Any] | None]:
    """The partitions' stamps, read concurrently (on an object store a read is mostly waiting)."""
    with ThreadPoolExecutor(max_workers=max(1, min(CONCURRENT_READS, len(keys)))) as pool:
        return dict(zip(keys, pool.map(lambda key: read_stamp(partition_url(out_url, key), storage_options), keys)))


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
