"""The failed-check alert sensor and range runs, whose check executions are planned at the start."""

from dagster import AssetCheckKey, SensorResult

import mds_assets.checks as checks
from mds_assets.checks import shard_size_evaluation
from mds_assets.keys import MDS_SHARDS
from mds_assets.partitions import raw_batches
from mds_assets.sensors import failed_check_alert_sensor

from .conftest import record, write_batch
from .test_assets import job
from .test_automation import evaluate


def test_a_failed_check_of_a_range_run_is_alerted_even_when_the_sensor_ticked_during_the_run(
    instance, settings, raw_dir, monkeypatch
):
    """A range run plans (and numbers) every partition's check execution when it starts, and
    evaluates them one by one as partitions are built. An alert sensor tick in the middle of
    the run must not move its cursor past the rows still planned, or a check failing later in
    the same run is never alerted."""
    records = [record(2, n) for n in range(40)]
    records[3]["uid"] = "x" * 3000  # one sample over shard_size_limit: shard_size fails (WARN)
    write_batch(raw_dir, "batch-2.jsonl", records)
    instance.add_dynamic_partitions(raw_batches.name, ["batch-0", "batch-1", "batch-2"])
    cursors = []

    def evaluation_with_a_tick_first(settings_, key):
        if key == "batch-0":  # the daemon ticks while the run is on its first partition
            result, context = evaluate(failed_check_alert_sensor, instance, settings)
            cursors.append(result.cursor if isinstance(result, SensorResult) else context.cursor)
        return shard_size_evaluation(settings_, key)

    monkeypatch.setattr(checks, "shard_size_evaluation", evaluation_with_a_tick_first)
    job("build_partition", settings).execute_in_process(
        tags={"dagster/asset_partition_range_start": "batch-0", "dagster/asset_partition_range_end": "batch-2"},
        instance=instance,
        raise_on_error=False,
    )
    (failed,) = [
        r
        for r in instance.event_log_storage.get_asset_check_execution_history(
            AssetCheckKey(MDS_SHARDS, "shard_size"), limit=10
        )
        if r.status.value == "FAILED"
    ]
    assert failed.partition == "batch-2"

    alerted, context = evaluate(failed_check_alert_sensor, instance, settings, cursor=cursors[0])
    assert isinstance(alerted, SensorResult), alerted
    again, _ = evaluate(failed_check_alert_sensor, instance, settings, cursor=alerted.cursor)
    assert again.skip_message == "no new failed checks"  # alerted once
