"""The jobs users launch, schedule and sense: build partitions, publish, or only check."""

from dagster import AssetSelection, define_asset_job, job

from .assets.index import mds_index
from .checks import check_shard_size
from .keys import MDS_SHARDS, RAW_SAMPLES, SELECTED_SAMPLES
from .partitions import raw_batches

build_partition_job = define_asset_job(
    "build_partition",
    selection=AssetSelection.assets(RAW_SAMPLES, SELECTED_SAMPLES, MDS_SHARDS),
    description="Load, select and write raw batches as `.mds` partitions (with their shard_size check): one "
    "partition, or a range of them in one run.",
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


@job(
    partitions_def=raw_batches,
    description="Only the shard_size check of one partition, chosen in the launchpad, on what is in storage.",
)
def check_partition() -> None:
    # A job of its own (not an asset job) because Dagster does not make a checks-only asset job
    # partitioned, and only a partitioned job gets a partition picker in the launchpad.
    check_shard_size()


partition_checks_job = check_partition

# Every job above: a failed run of one of them is alerted (sensors.failed_run_alert_sensor).
ALERTED_JOBS = frozenset(
    job.name for job in (build_partition_job, publish_index_job, index_checks_job, partition_checks_job)
)
