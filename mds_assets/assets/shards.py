"""`mds_shards`: each raw batch written as one complete `.mds` dataset under `<out>/partitions/<key>/`,
with the full profile of the batch taken in the same pass (its `shard_size` check is in `checks`)."""

from dagster import (
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
)

from ..core.grouping import RawGroup
from ..core.partition_writer import PartitionBuild
from ..keys import MDS_SHARDS, SELECTED_SAMPLES
from .specs import partition_asset_spec

MDS_SHARDS_SPEC = partition_asset_spec(
    MDS_SHARDS,
    deps=[SELECTED_SAMPLES],
    description="A partition's raw batches streamed through the field selection into a complete, valid "
    "dataset per partition, under `partitions/` in the output URL (one folder per partition key), and their "
    "full profile (records, field types) from the same pass. Format `composer`: StreamingDatasetWriter's `.mds` "
    "(index.mds); format `streaming`: MDSWriter's MDS v2 in a new generation folder per build, the "
    "partition's index.json pointing at it.",
    kinds={"python", "mds"},
)


def _shard_table(checksum: str) -> TableSchema:
    """The shard table's columns; the last one named after the checksum the format records
    (crc32 in the composer format's manifest, sha1 in the streaming format's index)."""
    return TableSchema(
        columns=[
            TableColumn("shard", "string"),
            TableColumn("samples", "int"),
            TableColumn("bytes", "int"),
            TableColumn("stored_bytes", "int"),
            TableColumn(checksum, "string"),
        ]
    )


def shards_metadata(build: PartitionBuild, batch: RawGroup) -> dict:
    manifest = build.manifest
    seconds = max(build.seconds, 1e-9)
    return {
        "dagster/row_count": manifest.total_samples,
        "path": MetadataValue.path(build.url),
        "bytes": manifest.total_bytes,
        "stored_bytes": build.stored_bytes,
        "compression": manifest.compression or "none",
        "compression_ratio": round(manifest.total_bytes / build.stored_bytes, 3) if build.stored_bytes else 1.0,
        "shards": len(manifest.shards),
        "samples_per_second": round(manifest.total_samples / seconds, 1),
        "megabytes_per_second": round(manifest.total_bytes / seconds / 1e6, 2),
        "batch_fingerprint": batch.fingerprint,
        "batch_bytes": batch.size,
        "records": build.profile.records,
        "fields": MetadataValue.json(build.profile.field_types()),
        "shard_table": MetadataValue.table(
            [
                TableRecord(
                    {
                        "shard": s.file,
                        "samples": s.samples,
                        "bytes": s.bytes,
                        "stored_bytes": s.stored_bytes,
                        manifest.checksum_algorithm: s.checksum,
                    }
                )
                for s in manifest.shards[:500]
            ],
            schema=_shard_table(manifest.checksum_algorithm),
        ),
    }
