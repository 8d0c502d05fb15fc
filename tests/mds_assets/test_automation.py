"""Sensors and the schedule, through Dagster's build_*_context helpers."""

import logging

from dagster import (
    AssetCheckKey,
    AssetSelection,
    Definitions,
    SensorResult,
    build_schedule_context,
    build_sensor_context,
    materialize,
)

from mds_assets.assets.batch_pipeline import batch_pipeline
from mds_assets.build import build
from mds_assets.jobs import build_partition_job, partition_checks_job
from mds_assets.keys import MDS_SHARDS
from mds_assets.partitions import raw_batches
from mds_assets.schedules import nightly_publish_schedule
from mds_assets.sensors import failed_check_alert_sensor, raw_batch_sensor
from writer import StreamingDatasetWriter

from .alerts import LogLines
from .conftest import record, write_batch


def evaluate(sensor, instance, settings, cursor=None):
    context = build_sensor_context(instance=instance, cursor=cursor, resources={"mds_settings": settings})
    return sensor(context), context


def requested(requests) -> list[tuple[str, str]]:
    """Each run request's partitions as (first, last): a range, or one partition (first == last)."""
    return [
        (r.partition_key, r.partition_key)
        if r.partition_key
        else (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in requests
    ]


def test_the_sensor_registers_new_batches_and_requests_their_runs(instance, settings, raw_dir):
    result, _ = evaluate(raw_batch_sensor, instance, settings)
    assert requested(result.run_requests) == [("batch-0", "batch-2")]  # one run for the three adjacent batches
    listed = result.run_requests[0].run_config["ops"]["batch_pipeline"]["config"]["batches"]
    assert [batch["name"] for batch in listed] == ["batch-0.jsonl", "batch-1.jsonl", "batch-2.jsonl"]
    (add,) = result.dynamic_partitions_requests
    assert add.partitions_def_name == raw_batches.name and sorted(add.partition_keys) == [
        "batch-0",
        "batch-1",
        "batch-2",
    ]
    instance.add_dynamic_partitions(raw_batches.name, list(add.partition_keys))

    again, _ = evaluate(raw_batch_sensor, instance, settings, cursor=result.cursor)
    assert again.run_requests == [] and again.dynamic_partitions_requests == []

    write_batch(raw_dir, "batch-1.jsonl", [record(1, n) for n in range(3)])  # changed
    write_batch(raw_dir, "batch-7.jsonl", [record(7, n) for n in range(3)])  # new
    changed, _ = evaluate(raw_batch_sensor, instance, settings, cursor=again.cursor)
    assert sorted(r.partition_key for r in changed.run_requests) == ["batch-1", "batch-7"]
    assert list(changed.dynamic_partitions_requests[0].partition_keys) == ["batch-7"]


def test_the_sensor_skips_with_a_reason_when_the_raw_url_is_missing(instance, settings, tmp_path):
    missing = type(settings)(**{**settings.model_dump(), "raw_url": str(tmp_path / "nowhere")})
    result, _ = evaluate(raw_batch_sensor, instance, missing)
    assert "does not exist" in result.skip_message


def test_the_nightly_schedule_requests_a_publish_run(instance):
    context = build_schedule_context(instance=instance)
    requests = nightly_publish_schedule.evaluate_tick(context).run_requests
    assert len(requests) == 1
    assert nightly_publish_schedule.job_name == "publish_index"
    assert nightly_publish_schedule.cron_schedule == "0 3 * * *"


def evaluate_logged(sensor, instance, settings, cursor=None):
    """`evaluate`, with what the sensor logged: (result, context, [(level, message)])."""
    context = build_sensor_context(instance=instance, cursor=cursor, resources={"mds_settings": settings})
    handler = LogLines()
    context.log.addHandler(handler)
    result = sensor(context)
    return result, context, [(record.levelno, record.getMessage()) for record in handler.records]


def test_a_failed_check_is_alerted_once_by_log_and_webhook(instance, settings, webhook):
    instance.add_dynamic_partitions(raw_batches.name, ["batch-0"])
    materialize(
        [batch_pipeline],
        partition_key="batch-0",
        instance=instance,
        resources={"mds_settings": settings},
    )
    quiet, context = evaluate(failed_check_alert_sensor, instance, settings)
    assert quiet.skip_message == "no new failed checks"
    _forge_oversized(settings, "batch-0")
    defs = Definitions(
        assets=[batch_pipeline],
        jobs=[partition_checks_job],
        resources={"mds_settings": settings},
    )
    defs.resolve_job_def("check_partition").execute_in_process(
        partition_key="batch-0", instance=instance, raise_on_error=False
    )
    alerted, context, logged = evaluate_logged(failed_check_alert_sensor, instance, settings, context.cursor)
    assert isinstance(alerted, SensorResult) and alerted.cursor  # alerted: not a skip
    alert = "check mds_shards:shard_size partition batch-0 failed (ERROR) in run"
    assert [message for level, message in logged if alert in message and level == logging.ERROR] != []
    assert len([message for _, message in logged if alert in message]) == 1, logged
    assert [alert in received["text"] for received in webhook] == [True]
    again, _, logged_again = evaluate_logged(failed_check_alert_sensor, instance, settings, alerted.cursor)
    assert again.skip_message == "no new failed checks"
    assert len(webhook) == 1 and not [message for _, message in logged_again if alert in message]


def _forge_oversized(settings, key):
    with StreamingDatasetWriter(
        f"{settings.out_url}/partitions/{key}", ["uid"], shard_size_limit=10**6, overwrite=True
    ) as writer:
        writer.write_samples([{"uid": b"x" * 800}, {"uid": b"y" * 800}], use_tqdm=False)


def _check_partition_job(settings):
    defs = Definitions(
        assets=[batch_pipeline],
        jobs=[partition_checks_job],
        resources={"mds_settings": settings},
    )
    return defs.resolve_job_def("check_partition")


def _execute_all(settings, instance):
    """A run of only mds_shards' checks, with no partition: what "Execute all" launches."""
    return materialize(
        [batch_pipeline],
        selection=AssetSelection.checks_for_assets(MDS_SHARDS),
        instance=instance,
        resources={"mds_settings": settings},
        raise_on_error=False,
    )


def test_the_checks_only_job_is_partitioned_so_the_launchpad_offers_a_partition(instance, settings):
    job = _check_partition_job(settings)
    assert job.partitions_def == raw_batches
    instance.add_dynamic_partitions(raw_batches.name, ["batch-0", "batch-1"])
    materialize(
        [batch_pipeline],
        partition_key="batch-0",
        instance=instance,
        resources={"mds_settings": settings},
    )
    result = job.execute_in_process(partition_key="batch-0", instance=instance)
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed and evaluation.partition == "batch-0"
    assert "problems" not in evaluation.metadata  # a passing check shows no empty "problems"
    _forge_oversized(settings, "batch-0")
    failing = job.execute_in_process(partition_key="batch-0", instance=instance, raise_on_error=False)
    assert not failing.success  # an ERROR fails the run, as the blocking check does with the asset
    (evaluation,) = failing.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.partition == "batch-0"
    (record, *_) = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey.from_user_string("mds_shards:shard_size"), limit=1
    )
    assert (record.run_id, record.partition, record.status.value) == (failing.run_id, "batch-0", "FAILED")


def test_a_checks_only_run_without_a_partition_checks_every_materialised_partition(instance, settings):
    """What the Checks tab's "Execute all" launches: no partition. It must not fail with
    "Cannot access partition_key for a non-partitioned run"."""
    instance.add_dynamic_partitions(raw_batches.name, ["batch-0", "batch-1", "batch-2"])
    for key in ("batch-0", "batch-1"):  # batch-2 is registered but never built: not checked
        materialize(
            [batch_pipeline],
            partition_key=key,
            instance=instance,
            resources={"mds_settings": settings},
        )
    result = _execute_all(settings, instance)
    assert result.success
    evaluations = {e.partition: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {"batch-0", "batch-1", None}
    assert evaluations["batch-0"].passed and evaluations["batch-1"].passed
    assert evaluations[None].passed and evaluations[None].description == "2 partitions checked"

    _forge_oversized(settings, "batch-1")
    failing = _execute_all(settings, instance)
    assert not failing.success  # shard_size is blocking: an ERROR fails the run
    evaluations = {e.partition: e for e in failing.get_asset_check_evaluations()}
    assert evaluations["batch-0"].passed and not evaluations["batch-1"].passed
    assert "over the 1000-byte limit" in evaluations["batch-1"].description
    assert evaluations[None].description == "2 partitions checked; failed: batch-1"
    records = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey.from_user_string("mds_shards:shard_size"), limit=10
    )
    latest = {r.partition: r.status.value for r in records if r.run_id == failing.run_id}
    assert latest == {"batch-0": "SUCCEEDED", "batch-1": "FAILED", None: "FAILED"}


def test_the_sensor_does_not_request_batches_already_built_from_the_same_batch_and_settings(
    instance, settings, raw_dir
):
    """Opening the UI after `mds-assets demo`: the sensor's first tick (no cursor) must not request
    a run for every batch the demo has just built."""
    assert build(settings, workers=1, progress=False).ok
    first, _ = evaluate(raw_batch_sensor, instance, settings)
    assert first.run_requests == [] and first.dynamic_partitions_requests == []

    write_batch(raw_dir, "batch-1.jsonl", [record(1, n) for n in range(3)])  # changed since it was built
    changed, _ = evaluate(raw_batch_sensor, instance, settings, cursor=first.cursor)
    assert [r.partition_key for r in changed.run_requests] == ["batch-1"]

    materialize(
        [batch_pipeline],
        partition_key="batch-1",
        instance=instance,
        resources={"mds_settings": settings},
    )  # built from the UI this time
    fresh, _ = evaluate(raw_batch_sensor, instance, settings)
    assert fresh.run_requests == []

    gz = type(settings)(**{**settings.model_dump(), "compression": "gz"})  # the way they are written changed
    regz, _ = evaluate(raw_batch_sensor, instance, gz)
    assert requested(regz.run_requests) == [("batch-0", "batch-2")]


def test_a_large_import_is_requested_as_runs_of_at_most_eight_partitions_that_build_them(instance, settings, raw_dir):
    for batch in range(3, 10):
        write_batch(raw_dir, f"batch-{batch}.jsonl", [record(batch, n) for n in range(3)])
    result, _ = evaluate(raw_batch_sensor, instance, settings)
    assert requested(result.run_requests) == [("batch-0", "batch-7"), ("batch-8", "batch-9")]
    instance.add_dynamic_partitions(raw_batches.name, list(result.dynamic_partitions_requests[0].partition_keys))
    request = result.run_requests[1]
    job = Definitions(
        assets=[batch_pipeline], jobs=[build_partition_job], resources={"mds_settings": settings}
    ).resolve_job_def("build_partition")
    run = job.execute_in_process(run_config=request.run_config, tags=request.tags, instance=instance)
    assert run.success
    assert instance.get_materialized_partitions(MDS_SHARDS) == {"batch-8", "batch-9"}
