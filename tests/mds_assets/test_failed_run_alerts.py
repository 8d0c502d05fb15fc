"""What a failed-run alert says, in the sensor's log and in the webhook's payload: the job, the
partitions, each failed partition's error, and the run; and that it is evaluated as the daemon
does (from the instance's run-failure events, past ones not alerted again)."""

import logging
from typing import Any

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter, build_sensor_context

from mds_assets.cli import main
from mds_assets.resources import MDSSettings
from mds_assets.sensors import failed_run_alert_sensor

from ..commands import build_arguments
from .alerts import LogLines
from .conftest import FIELDS


def _tick(instance: DagsterInstance, cursor: str | None) -> tuple[Any, list[logging.LogRecord]]:
    """One evaluation of the sensor as the daemon makes it: through its definition, with a cursor."""
    context = build_sensor_context(instance=instance, cursor=cursor)
    lines = LogLines()
    context.log.addHandler(lines)
    return failed_run_alert_sensor.evaluate_tick(context), lines.records


def test_a_failed_build_run_is_alerted_once_naming_job_partition_error_and_run(
    instance: DagsterInstance, settings: MDSSettings, raw_dir, webhook
):
    first, _ = _tick(instance, None)  # starts after what the instance already holds
    with (raw_dir / "batch-1.jsonl").open("a") as batch:
        batch.write('{"uid": "1-40", "meta": \n')
    command = [*build_arguments(settings.raw_url, settings.out_url, FIELDS), "--quiet", "--partition-bytes", "1"]
    assert main([*command, "--workers", "1"]) == 1
    (failed,) = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.FAILURE]))

    result, lines = _tick(instance, first.cursor)
    errors = [line.getMessage() for line in lines if line.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith(f"run {failed.run_id} of build_partition (partitions "), errors
    assert "batch-1: batch batch-1.jsonl, line 41: not valid JSON" in errors[0], errors
    (payload,) = webhook
    assert payload["job"] == "build_partition" and payload["run_id"] == failed.run_id
    assert list(payload["failed_partitions"]) == ["batch-1"] and payload["text"] == errors[0]

    _, again = _tick(instance, result.cursor)
    assert not [line for line in again if line.levelno == logging.ERROR] and len(webhook) == 1


def test_a_run_of_another_job_is_not_alerted(instance: DagsterInstance, webhook):
    from dagster import job, op

    @op
    def fails() -> None:
        raise ValueError("not ours")

    @job
    def someone_elses() -> None:
        fails()

    first, _ = _tick(instance, None)
    assert not someone_elses.execute_in_process(instance=instance, raise_on_error=False).success
    _, lines = _tick(instance, first.cursor)
    assert not [line for line in lines if line.levelno == logging.ERROR] and webhook == []
