"""Write one raw batch as one complete `.mds` dataset: records stream through the selection
into the writer, so memory stays O(one shard) and nothing passes through intermediate storage."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from writer import StreamingDatasetWriter
from writer.manifest import Manifest

from .partitions import partition_url
from .raw_sources import RawBatch, read_records
from .selection import FieldSelection, RecordEncoder
from .stamps import build_stamp, write_stamp


@dataclass(frozen=True)
class PartitionBuild:
    url: str
    manifest: Manifest
    seconds: float

    @property
    def stored_bytes(self) -> int:
        return sum(shard.stored_bytes for shard in self.manifest.shards)


def write_partition(
    batch: RawBatch,
    selections: list[FieldSelection],
    out_url: str,
    shard_size_limit: int,
    compression: str | None,
    storage_options: dict[str, Any] | None = None,
) -> PartitionBuild:
    """Replace the batch's partition dataset under `<out>/partitions/<key>/` with a fresh build."""
    url = partition_url(out_url, batch.partition_key)
    encoder = RecordEncoder(selections, batch.name)
    samples = (encoder.encode(line, record) for line, record in read_records(batch, storage_options))
    start = time.perf_counter()
    with StreamingDatasetWriter(url, [s.name for s in selections], shard_size_limit, compression,
                                storage_options=storage_options, overwrite=True) as writer:
        writer.write_samples(samples, use_tqdm=False)
    seconds = time.perf_counter() - start
    stamp = build_stamp(batch.name, batch.fingerprint, [str(s) for s in selections], shard_size_limit, compression)
    write_stamp(url, stamp, storage_options)
    assert writer.manifest is not None  # finish() sets it
    return PartitionBuild(url, writer.manifest, seconds)
