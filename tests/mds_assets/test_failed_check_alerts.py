"""What a failed-check alert says, in the sensor's log and in the webhook's payload: the check,
the partition, the reason (the evaluation's description), the severity and the run."""

import logging
from typing import Any

from dagster import (
    DagsterInstance,
    Definitions,
    SensorResult,
    SkipReason,
    build_sensor_context,
)

from mds_assets.assets.batch_pipeline import batch_pipeline
from mds_assets.jobs import partition_checks_job
from mds_assets.partitions import raw_batches
from mds_assets.resources import MDSSettings
from mds_assets.sensors import failed_check_alert_sensor
from writer import StreamingDatasetWriter

from .alerts import LogLines


def _tick(
    instance: DagsterInstance, settings: MDSSettings
) -> tuple[SensorResult | SkipReason, list[logging.LogRecord]]:
    context = build_sensor_context(instance=instance, resources={"mds_settings": settings})
    lines = LogLines()
    context.log.addHandler(lines)
    return failed_check_alert_sensor(context), lines.records


def _oversized_partition(instance: DagsterInstance, settings: MDSSettings, key: str) -> str:
    """A partition whose shards break the limit in storage, checked by a check_partition run (its id)."""
    instance.add_dynamic_partitions(raw_batches.name, [key])
    with StreamingDatasetWriter(
        f"{settings.out_url}/partitions/{key}", ["uid"], shard_size_limit=10**6, overwrite=True
    ) as writer:
        writer.write_samples([{"uid": b"x" * 800}, {"uid": b"y" * 800}], use_tqdm=False)
    defs = Definitions(assets=[batch_pipeline], jobs=[partition_checks_job], resources={"mds_settings": settings})
    result = defs.resolve_job_def("check_partition").execute_in_process(
        partition_key=key, instance=instance, raise_on_error=False
    )
    return result.run_id


def test_the_alert_logs_and_posts_the_reason_the_severity_and_the_run(
    instance: DagsterInstance, settings: MDSSettings, webhook: list[dict[str, Any]]
) -> None:
    run_id = _oversized_partition(instance, settings, "batch-0")
    result, logged = _tick(instance, settings)
    assert isinstance(result, SensorResult)
    (line,) = [r for r in logged if r.levelno == logging.ERROR]
    message = line.getMessage()
    reason = "bytes in 2 samples, over the 1000-byte limit"  # the check's own description
    for part in ("mds_shards:shard_size", "partition batch-0", "ERROR", run_id, reason):
        assert part in message, (part, message)
    (payload,) = webhook
    assert payload["text"] == message
    assert payload["check"] == "mds_shards:shard_size"
    assert payload["partition"] == "batch-0"
    assert payload["severity"] == "ERROR"
    assert payload["run_id"] == run_id
    assert reason in payload["reason"]
