"""How `shard_size` evaluations are recorded: each on its partition's latest materialization (what
Dagster needs to count a partition's check as current), and runs log no complaint about outputs."""

from dagster import AssetCheckKey, AssetRecordsFilter, DagsterInstance, Definitions

from mds_assets.assets.batch_pipeline import batch_pipeline
from mds_assets.jobs import build_partition_job, partition_checks_job
from mds_assets.keys import MDS_SHARDS, SHARD_SIZE
from mds_assets.partitions import raw_batches
from mds_assets.resources import MDSSettings

KEYS = ["batch-0", "batch-1", "batch-2"]


def _definitions(settings: MDSSettings) -> Definitions:
    return Definitions(
        assets=[batch_pipeline], jobs=[build_partition_job, partition_checks_job], resources={"mds_settings": settings}
    )


def _build_range(settings: MDSSettings, instance: DagsterInstance) -> str:
    instance.add_dynamic_partitions(raw_batches.name, KEYS)
    result = (
        _definitions(settings)
        .resolve_job_def("build_partition")
        .execute_in_process(
            tags={"dagster/asset_partition_range_start": KEYS[0], "dagster/asset_partition_range_end": KEYS[-1]},
            instance=instance,
        )
    )
    assert result.success
    return result.run_id


def _latest_materialization_id(instance: DagsterInstance, key: str) -> int:
    records = instance.fetch_materializations(AssetRecordsFilter(asset_key=MDS_SHARDS, asset_partitions=[key]), limit=1)
    return records.records[0].storage_id


def _targets(instance: DagsterInstance, run_id: str) -> dict[str | None, int | None]:
    history = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(MDS_SHARDS, SHARD_SIZE), limit=50
    )
    return {
        record.partition: (target.storage_id if (target := record.evaluation.target_materialization_data) else None)
        for record in history
        if record.run_id == run_id and record.evaluation is not None
    }


def test_each_partition_check_of_a_build_targets_its_partition_s_materialization(
    settings: MDSSettings, instance: DagsterInstance
) -> None:
    run_id = _build_range(settings, instance)
    assert _targets(instance, run_id) == {key: _latest_materialization_id(instance, key) for key in KEYS}


def test_a_partition_rechecked_alone_targets_its_latest_materialization(
    settings: MDSSettings, instance: DagsterInstance
) -> None:
    _build_range(settings, instance)
    result = (
        _definitions(settings)
        .resolve_job_def("check_partition")
        .execute_in_process(partition_key="batch-1", instance=instance)
    )
    assert _targets(instance, result.run_id) == {"batch-1": _latest_materialization_id(instance, "batch-1")}


def test_a_passing_check_is_recorded_with_dagster_s_default_severity(
    settings: MDSSettings, instance: DagsterInstance
) -> None:
    run_id = _build_range(settings, instance)
    history = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(MDS_SHARDS, SHARD_SIZE), limit=50
    )
    severities = {r.evaluation.severity.value for r in history if r.run_id == run_id and r.evaluation is not None}
    assert severities == {"ERROR"}  # a pass is not shown with a warning sign


def test_a_build_run_logs_no_missing_output_line(settings: MDSSettings, instance: DagsterInstance) -> None:
    run_id = _build_range(settings, instance)
    messages = [entry.user_message for entry in instance.all_logs(run_id)]
    assert messages and not [m for m in messages if "did not yield or return expected outputs" in m]
