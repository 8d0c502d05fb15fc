"""The jobs users launch, schedule and sense: build a batch, publish, or only check."""

from dagster import AssetSelection, define_asset_job

from .assets.index import mds_index
from .assets.raw import raw_samples
from .assets.selected import selected_samples
from .assets.shards import mds_shards

build_partition_job = define_asset_job(
    "build_partition",
    selection=AssetSelection.assets(raw_samples, selected_samples, mds_shards),
    description="Load, select and write one raw batch as an .mds partition (with its shard_size check).",
)

publish_index_job = define_asset_job(
    "publish_index",
    selection=AssetSelection.assets(mds_index),
    description="Publish the materialised partitions as one dataset and run the index checks.",
)

index_checks_job = define_asset_job(
    "check_published_dataset",
    selection=AssetSelection.checks_for_assets(mds_index),
    description="Only the checks of the published dataset: monitoring without rematerialising.",
)

partition_checks_job = define_asset_job(
    "check_partition",
    selection=AssetSelection.checks_for_assets(mds_shards),
    description="Only the shard_size check of one partition (run tag dagster/partition), on what is in storage.",
)
