"""`mds_shards`: each raw batch written as one complete `.mds` dataset under `<out>/partitions/<key>/`,
with the full profile of the batch taken in the same pass, and its `shard_size` check."""

import warnings
from collections.abc import Iterator

from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MetadataValue,
    PreviewWarning,
    TableColumn,
    TableRecord,
    TableSchema,
)

from ..checks import shard_size_evaluation
from ..core.grouping import RawGroup
from ..core.layout import stored_partitions
from ..core.partition_writer import PartitionBuild
from ..core.wording import plural
from ..keys import MDS_SHARDS, SELECTED_SAMPLES, SHARD_SIZE
from ..partitions import RAW_BATCHES, raw_batches
from ..resources import MDSSettings
from .specs import partition_asset_spec

MDS_SHARDS_SPEC = partition_asset_spec(
    MDS_SHARDS,
    deps=[SELECTED_SAMPLES],
    description="One raw batch streamed through the field selection into StreamingDatasetWriter: a "
    "complete, valid `.mds` dataset per partition, under `partitions/` in the output URL (one "
    "folder per partition key), and the batch's full profile (records, field types) from the same pass.",
    kinds={"python", "mds"},
)

_SHARD_TABLE = TableSchema(
    columns=[
        TableColumn("shard", "string"),
        TableColumn("samples", "int"),
        TableColumn("bytes", "int"),
        TableColumn("stored_bytes", "int"),
        TableColumn("crc32", "string"),
    ]
)


def shard_size_spec() -> AssetCheckSpec:
    # Partitioned checks are a preview feature of Dagster; they give one result per partition.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        return AssetCheckSpec(
            SHARD_SIZE,
            asset=MDS_SHARDS,
            blocking=True,
            partitions_def=raw_batches,
            description="Every shard at or under shard_size_limit and as long as the index says. A shard "
            "holding one oversized sample is a WARN naming it; anything else is an ERROR.",
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
                        "crc32": s.checksum,
                    }
                )
                for s in manifest.shards[:500]
            ],
            schema=_SHARD_TABLE,
        ),
    }


def check_every_partition(
    context: AssetExecutionContext, settings: MDSSettings
) -> Iterator[AssetCheckEvaluation | AssetCheckResult]:
    """A checks-only run without a partition (the UI's "Execute all") checks every partition in
    storage (the one record of what is built): one evaluation per partition, shown on that
    partition, then a summary for the run."""
    complete, incomplete = stored_partitions(settings.out_url, settings.fsspec_options())
    registered = set(context.instance.get_dynamic_partitions(RAW_BATCHES))
    keys = sorted(key for key in complete + incomplete if key in registered)
    failed: list[str] = []
    warned: list[str] = []
    for key in keys:
        evaluation = shard_size_evaluation(settings, key)
        if not evaluation.passed:
            (failed if evaluation.severity == AssetCheckSeverity.ERROR else warned).append(key)
        yield evaluation
    described = [f"{plural(len(keys), 'partition')} checked"]
    described += [f"failed: {', '.join(failed)}"] if failed else []
    described += [f"warnings: {', '.join(warned)}"] if warned else []
    yield AssetCheckResult(
        check_name=SHARD_SIZE,
        asset_key=MDS_SHARDS,
        passed=not failed and not warned,
        severity=AssetCheckSeverity.ERROR if failed else AssetCheckSeverity.WARN,
        metadata={
            "partitions_checked": len(keys),
            **({"failed_partitions": MetadataValue.json(failed)} if failed else {}),
            **({"warned_partitions": MetadataValue.json(warned)} if warned else {}),
        },
        description="; ".join(described),
    )
