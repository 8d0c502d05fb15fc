"""Write one partition (a group of raw files) as one complete `.mds` dataset: records stream through the profile and
the selection into the writer — one pass over the batch, memory O(one shard), nothing through
intermediate storage.

A rebuild is written to a staging directory first and promoted only when complete (by the
same crash-safe merge that publishes the index: hard links locally, server-side copies on
object stores). So a rebuild that fails while it is written — bad record, storage outage —
leaves the partition's previous dataset exactly as it was; one that fails while it is promoted
leaves the previous dataset, the new one, or no index, and a partition without an index counts
as not built, so the next build rebuilds it."""

from __future__ import annotations

import posixpath
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from writer import StreamingDatasetWriter
from writer.lock import DatasetLock, DatasetLockedError, LockWait
from writer.manifest import Manifest
from writer.merge import merge_datasets
from writer.storage import Storage

from .grouping import RawGroup, read_group
from .layout import partition_url, staging_url
from .member_contents import MemberContents
from .profile import BatchProfile, profiled
from .selection import FieldSelection, RecordEncoder, column_encodings
from .stamps import STAMP_NAME, encode_stamp, written_stamp


@dataclass(frozen=True)
class PartitionBuild:
    url: str
    manifest: Manifest
    seconds: float
    profile: BatchProfile  # of every record, taken in the same pass

    @property
    def stored_bytes(self) -> int:
        return sum(shard.stored_bytes for shard in self.manifest.shards)


def write_partition(
    group: RawGroup,
    selections: list[FieldSelection],
    out_url: str,
    shard_size_limit: int,
    compression: str | None,
    storage_options: dict[str, Any] | None = None,
    records: Iterable[tuple[int, dict]] | None = None,
    lock_wait: LockWait | None = None,
) -> PartitionBuild:
    """Replace the group's partition dataset under `<out>/partitions/<key>/` with a fresh build
    from its records (read here, or given: those of a `profile.reading` already begun), profiled
    and encoded as they stream.

    `lock_wait`: how long to wait while another process writes this partition (an orphaned step of
    a failed run, which stops once it sees its run's failure; or another build of it); then
    PartitionLockedError naming the partition and the lock's holder."""
    try:
        return _write_partition(
            group, selections, out_url, shard_size_limit, compression, storage_options, records, lock_wait
        )
    except DatasetLockedError as error:
        raise PartitionLockedError(group.partition_key, error) from None


class PartitionLockedError(DatasetLockedError):
    """Another process holds the partition's lock (writes or publishes it) past the wait; the
    message names the partition and that process."""

    def __init__(self, key: str, error: DatasetLockedError) -> None:
        super().__init__(f"partition {key} is locked by another process: {error}")


def _write_partition(
    group: RawGroup,
    selections: list[FieldSelection],
    out_url: str,
    shard_size_limit: int,
    compression: str | None,
    storage_options: dict[str, Any] | None,
    records: Iterable[tuple[int, dict]] | None,
    lock_wait: LockWait | None,
) -> PartitionBuild:
    url = partition_url(out_url, group.partition_key)
    staging = staging_url(out_url, group.partition_key)
    contents = MemberContents(group)
    encode = contents.counted(RecordEncoder(selections, group.name).encode)
    profile = BatchProfile(group.name)
    if records is None:
        records = read_group(group, storage_options)
    samples = (encode(line, record) for line, record in profiled(records, profile))
    start = time.perf_counter()
    with StreamingDatasetWriter(
        staging,
        [s.name for s in selections],
        shard_size_limit,
        compression,
        storage_options=storage_options,
        overwrite=True,
        column_encodings=column_encodings(selections),
        lock_wait=lock_wait,
    ) as writer:
        writer.write_samples(samples, use_tqdm=False)
    seconds = time.perf_counter() - start
    stamp = written_stamp(
        group, [str(s) for s in selections], shard_size_limit, compression, "composer", contents.by_name
    )
    result = merge_datasets(
        [staging], url, storage_options, sidecars={STAMP_NAME: encode_stamp(stamp)}, lock_wait=lock_wait
    )
    _remove_staging(staging, storage_options)
    return PartitionBuild(url, result.manifest, seconds, profile)


def remove_staging_root(out_url: str, storage_options: dict[str, Any] | None) -> None:
    """Remove `<out>/partitions/.staging/` when it is empty (after a build has written every partition)."""
    try:
        Storage(posixpath.dirname(staging_url(out_url, "x")), storage_options).remove_if_empty()
    except Exception as error:  # cosmetic: an empty folder left behind
        warnings.warn(f"could not remove the empty staging folder under {out_url}: {error}", stacklevel=2)


def _remove_staging(staging: str, storage_options: dict[str, Any] | None) -> None:
    """Best effort: the partition is promoted already, and the next build of it clears a leftover.
    (The `.staging/` folder itself is removed by `remove_staging_root` once no partition is being
    written: removing it here would race with another partition creating its folder in it.)"""
    storage = Storage(staging, storage_options)
    try:
        with DatasetLock(storage, "removing a promoted staging copy"):  # never another build's copy
            storage.remove_all()
    except DatasetLockedError:
        pass  # another build is writing this partition's staging copy now: it is its to remove
    except Exception as error:  # e.g. botocore's connection errors, which are not OSError
        warnings.warn(f"could not remove the staging folder {staging}: {error}", stacklevel=2)
