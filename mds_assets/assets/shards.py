"""`mds_shards`: each raw batch written as one complete `.mds` dataset under `<out>/partitions/<key>/`."""


import warnings
from collections.abc import Iterator

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    multi_asset,
)

from ..checks import SHARD_SIZE, shard_size_result
from ..partition_writer import PartitionBuild, write_partition
from ..partitions import partition_url, raw_batches
from ..raw_sources import find_batch
from ..resources import MDSSettings
from .selected import SelectionPlan

MDS_SHARDS = AssetKey("mds_shards")
_SHARD_TABLE = TableSchema(columns=[TableColumn("shard", "string"), TableColumn("samples", "int"),
                                    TableColumn("bytes", "int"), TableColumn("stored_bytes", "int"),
                                    TableColumn("crc32", "string")])


def _shard_size_spec() -> AssetCheckSpec:
    # Partitioned checks are a preview feature of Dagster; they give one result per partition.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec")
        return AssetCheckSpec(
            SHARD_SIZE,
            asset=MDS_SHARDS,
            blocking=True,
            partitions_def=raw_batches,
            description="Every shard at or under shard_size_limit and as long as the index says. A shard "
                        "holding one oversized sample is a WARN naming it; anything else is an ERROR.",
        )


@multi_asset(
    specs=[AssetSpec(
        MDS_SHARDS,
        deps=["selected_samples"],
        description="One raw batch streamed through the field selection into StreamingDatasetWriter: a "
                    "complete, valid .mds dataset per partition under <out>/partitions/<key>/.",
        group_name="mds",
        kinds={"python", "mds"},
        owners=["team:data-engineering"],
    )],
    check_specs=[_shard_size_spec()],
    ins={"selected_samples": AssetIn()},
    partitions_def=raw_batches,
    can_subset=True,  # so the check can run alone, on what is in storage
)
def mds_shards(
    context: AssetExecutionContext, mds_settings: MDSSettings, selected_samples: SelectionPlan
) -> Iterator[MaterializeResult | AssetCheckResult]:
    options = mds_settings.fsspec_options()
    url = partition_url(mds_settings.out_url, context.partition_key)
    check = shard_size_result
    if MDS_SHARDS not in context.selected_asset_keys:
        yield check(url, mds_settings.shard_size_limit, options)
        return
    batch = find_batch(mds_settings.raw_url, context.partition_key, options)
    build = write_partition(batch, list(selected_samples.fields), mds_settings.out_url,
                            mds_settings.shard_size_limit, mds_settings.compression, options)
    context.log.info(f"wrote {build.manifest.total_samples} samples in {len(build.manifest.shards)} shards to {url}")
    yield MaterializeResult(
        asset_key=MDS_SHARDS,
        metadata=_build_metadata(build, batch.fingerprint),
        check_results=[check(url, mds_settings.shard_size_limit, options)],
    )


def _build_metadata(build: PartitionBuild, fingerprint: str) -> dict:
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
        "batch_fingerprint": fingerprint,
        "shard_table": MetadataValue.table(
            [TableRecord({"shard": s.file, "samples": s.samples, "bytes": s.bytes, "stored_bytes": s.stored_bytes,
                          "crc32": s.checksum}) for s in manifest.shards[:500]],
            schema=_SHARD_TABLE,
        ),
    }
