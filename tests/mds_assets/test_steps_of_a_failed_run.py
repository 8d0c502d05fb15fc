"""A step whose run has failed (its orchestrator lost, the run terminated) while the step still
runs — as a Celery task may — materialises nothing more: no partition is shown as a success of
a failed run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from mds_assets.assets import batch_pipeline as pipeline_module
from mds_assets.build import materialise_range
from mds_assets.keys import MDS_SHARDS
from mds_assets.partitions import RAW_BATCHES
from mds_assets.resources import MDSSettings


def test_a_step_stops_materialising_once_its_run_has_failed(
    instance: DagsterInstance, settings: MDSSettings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    groups = settings.raw_groups()  # one file each: the settings fixture's partition_bytes is 1
    instance.add_dynamic_partitions(RAW_BATCHES, [group.partition_key for group in groups])
    real_write_partition = pipeline_module.write_partition

    def run_fails_meanwhile(*args: Any, **kwargs: Any) -> Any:
        (run,) = instance.get_runs()
        if run.status == DagsterRunStatus.STARTED:  # the orchestrator marks it failed while this step writes
            instance.report_run_failed(run, message="the orchestrator was lost")
        return real_write_partition(*args, **kwargs)

    monkeypatch.setattr(pipeline_module, "write_partition", run_fails_meanwhile)
    errors = materialise_range(groups, settings.model_dump(), instance)
    (run,) = instance.get_runs()
    shards = [
        entry
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
        if entry.get_dagster_event().asset_key == MDS_SHARDS
    ]
    assert shards == [], [entry.get_dagster_event().partition for entry in shards]
    assert all(error is not None and "failed" in error for error in errors.values()), errors


def test_a_step_stops_writing_once_its_run_has_failed(
    instance: DagsterInstance, settings: MDSSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step looks at its run's status while it writes (every RUN_STATUS_POLL_SECONDS; at every
    record here): a run marked failed meanwhile, as when its orchestrator was killed, stops the
    write; nothing is promoted and the partition's lock is free for a rerun."""
    groups = settings.raw_groups()
    instance.add_dynamic_partitions(RAW_BATCHES, [group.partition_key for group in groups])
    monkeypatch.setattr(pipeline_module, "RUN_STATUS_POLL_SECONDS", 0.0, raising=False)
    real_write_partition = pipeline_module.write_partition

    def run_fails_midway(*args: Any, records: Any, **kwargs: Any) -> Any:
        def records_then_failure() -> Any:
            for number, item in enumerate(records):
                if number == 10:  # the orchestrator is found dead while this step writes
                    (run,) = instance.get_runs()
                    instance.report_run_failed(run, message="the orchestrator was lost")
                yield item

        return real_write_partition(*args, records=records_then_failure(), **kwargs)

    monkeypatch.setattr(pipeline_module, "write_partition", run_fails_midway)
    errors = materialise_range(groups[:1], settings.model_dump(), instance)
    (key,) = errors
    assert "failed while this step still ran" in str(errors[key]), errors
    out = Path(settings.out_url)
    assert not (out / "partitions" / key / "index.mds").exists(), "the write went on to promote the partition"
    assert not list(out.rglob(".mds-lock")), "a lock was left behind"
