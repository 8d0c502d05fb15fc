"""A run of the partitioned assets that names no partition fails; it never succeeds having built nothing."""

from dagster import materialize

from mds_assets.assets.batch_pipeline import batch_pipeline
from mds_assets.keys import MDS_SHARDS
from mds_assets.partitions import raw_batches


def test_a_run_of_the_partition_assets_without_a_partition_fails_instead_of_building_nothing(instance, settings):
    """A launch of build_partition (or of the three assets) with no partition picked must not
    take the checks-only branch of the one step and succeed, with a passing check, having built nothing."""
    instance.add_dynamic_partitions(raw_batches.name, ["batch-0", "batch-1"])
    result = materialize(
        [batch_pipeline], instance=instance, resources={"mds_settings": settings}, raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = str(failure.step_failure_data.error)
    assert "mds_shards, raw_samples, selected_samples are partitioned by raw batch" in message
    assert "choose a partition or a range of partitions to build" in message
    assert instance.get_materialized_partitions(MDS_SHARDS) == set()
