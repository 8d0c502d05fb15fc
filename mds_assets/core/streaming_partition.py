"""Write one group of raw files as one partition in the streaming format (MDS v2, `core.generations`).

Records stream through the profile and the selection into `writer.MDSWriter`, which writes a
new generation folder (its `index.json` last); the partition's `index.json` then points at
that generation (one atomic write), its stamp follows, and generations no index refers to any
more are removed. A build that fails while writing leaves the partition's dataset and every
file a published index refers to exactly as they were: only the new generation is written,
and it is discarded. One that fails at the promotion leaves the previous partition index or
the new one (never none): the next build repairs it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable
from typing import Any

from writer import MDSWriter
from writer.lock import DatasetLockedError, LockWait
from writer.reference_index import publish_by_reference, summary_manifest
from writer.storage import Storage

from .generations import generation_url, new_generation, remove_unreferenced_generations
from .grouping import RawGroup, read_group
from .layout import partition_url
from .member_contents import MemberContents
from .output_format import canonical_compression
from .partition_writer import PartitionBuild, PartitionLockedError
from .profile import BatchProfile, profiled
from .selection import FieldSelection, RecordEncoder, column_encodings
from .stamps import STAMP_NAME, encode_stamp, written_stamp

# Each shard's SHA-1 in the index, as mosaicml-streaming records it: `StreamingDataset(validate_hash=
# "sha1")` and `mds verify` check shards against it, and `index_consistency` compares it.
STREAMING_HASHES = ("sha1",)


def write_streaming_partition(
    group: RawGroup,
    selections: list[FieldSelection],
    out_url: str,
    shard_size_limit: int,
    compression: str | None,
    storage_options: dict[str, Any] | None = None,
    records: Iterable[tuple[int, dict[str, Any]]] | None = None,
    lock_wait: LockWait | None = None,
) -> PartitionBuild:
    """Build the group's partition anew under `<out>/partitions/<key>/` in the streaming format
    (in a generation of its own: no other build writes it; `lock_wait` is for the promotion)."""
    key = group.partition_key
    url = partition_url(out_url, key)
    generation = generation_url(out_url, key, new_generation())
    contents = MemberContents(group)
    encode = contents.counted(RecordEncoder(selections, group.name).encode)
    profile = BatchProfile(group.name)
    if records is None:
        records = read_group(group, storage_options)
    canonical = canonical_compression("streaming", compression)
    start = time.perf_counter()
    try:
        with MDSWriter(
            out=generation,
            columns=column_encodings(selections),
            compression=canonical,
            hashes=list(STREAMING_HASHES),
            size_limit=shard_size_limit,
            storage_options=storage_options,
        ) as writer:
            for line, record in profiled(records, profile):
                writer.write(encode(line, record))
    except BaseException:
        _discard(generation, storage_options)
        raise
    seconds = time.perf_counter() - start
    try:
        promoted = publish_by_reference([generation], url, storage_options, lock_wait)
    except DatasetLockedError as error:
        raise PartitionLockedError(key, error) from None
    stamp = written_stamp(
        group, [str(s) for s in selections], shard_size_limit, compression, "streaming", contents.by_name
    )
    Storage(url, storage_options).write_atomic(STAMP_NAME, encode_stamp(stamp))
    remove_unreferenced_generations(out_url, key, storage_options)
    return PartitionBuild(url, summary_manifest(promoted.index, [s.name for s in selections]), seconds, profile)


def _discard(generation: str, storage_options: dict[str, Any] | None) -> None:
    """Best effort: no index refers to a failed generation, and the next build removes a leftover."""
    try:
        Storage(generation, storage_options).remove_all()
    except Exception as error:
        warnings.warn(f"could not remove the unfinished generation {generation}: {error}", stacklevel=2)
