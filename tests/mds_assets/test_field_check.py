"""A selected field that no record has (a misspelt name) is found once, on the batches'
previews, before any partition is written, and every such field is named at once."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, Definitions

import mds_assets.core.raw_sources as raw_sources
from mds_assets.assets.batch_pipeline import batch_pipeline
from mds_assets.assets.index import mds_index
from mds_assets.jobs import build_partition_job
from mds_assets.partitions import raw_batches
from mds_assets.resources import MDSSettings

from ..commands import build_arguments
from .conftest import FIELDS, record, write_batch

REPO = Path(__file__).resolve().parents[2]
MISSPELT = ["uid", "txet", "blob:base64", "nn:int64"]


def _resources(settings: MDSSettings) -> dict[str, MDSSettings]:
    return {"mds_settings": settings}


def _built(out: Path) -> list[str]:
    """The partitions in storage (not the staging folder a run leaves for `mds-assets build` to remove)."""
    return sorted(path.name for path in (out / "partitions").iterdir() if not path.name.startswith("."))


def _range_run(settings: MDSSettings, instance: DagsterInstance, keys: list[str]) -> str:
    """A build_partition run over `keys` (one range); the run's failure description."""
    instance.add_dynamic_partitions(raw_batches.name, keys)
    defs = Definitions(
        assets=[batch_pipeline, mds_index], jobs=[build_partition_job], resources={"mds_settings": settings}
    )
    result = defs.resolve_job_def("build_partition").execute_in_process(
        tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    return failure.step_failure_data.user_failure_data.description


def test_misspelt_fields_fail_the_run_once_naming_each_before_any_partition_is_written(
    settings: MDSSettings, instance: DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records_read: list[str] = []
    original = raw_sources.read_records

    def counted(batch: raw_sources.RawBatch, options: dict | None = None):  # type: ignore[no-untyped-def]
        for line, raw in original(batch, options):
            records_read.append(batch.name)
            yield line, raw

    monkeypatch.setattr("mds_assets.core.grouping.read_records", counted)  # where a group reads its files
    misspelt = MDSSettings(**{**settings.model_dump(), "fields": MISSPELT})
    description = _range_run(misspelt, instance, ["batch-0", "batch-1", "batch-2"])
    assert "'txet', 'nn'" in description, description  # both, in one message
    assert description.count("txet") == 1, description  # once for the run, not once per partition
    assert not (tmp_path / "out" / "partitions").exists()  # nothing written
    assert len(records_read) <= 3 * 5  # the previews alone were read, not the batches (40 records each)


def test_a_field_present_in_some_batches_fails_only_the_batches_without_it(
    settings: MDSSettings, instance: DagsterInstance, raw_dir: Path, tmp_path: Path
) -> None:
    write_batch(raw_dir, "batch-1.jsonl", [{k: v for k, v in record(1, n).items() if k != "meta"} for n in range(5)])
    description = _range_run(settings, instance, ["batch-0", "batch-1", "batch-2"])
    assert "1 of 3 partitions failed" in description and "batch-1" in description
    assert _built(tmp_path / "out") == ["batch-0", "batch-2"]


def test_mds_assets_build_names_every_misspelt_field_once_and_writes_nothing(raw_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "mds_assets.cli", *build_arguments(raw_dir, out, MISSPELT), "--quiet"],
        env={**os.environ, "DAGSTER_HOME": str(tmp_path / "home")},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 1
    assert done.stderr.count("txet") == 1 and "'txet', 'nn'" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists() or not any(out.rglob("*.mds"))


def test_a_correct_selection_still_builds_every_partition(
    settings: MDSSettings, instance: DagsterInstance, tmp_path: Path
) -> None:
    assert settings.fields == FIELDS
    instance.add_dynamic_partitions(raw_batches.name, ["batch-0", "batch-1", "batch-2"])
    defs = Definitions(
        assets=[batch_pipeline, mds_index], jobs=[build_partition_job], resources={"mds_settings": settings}
    )
    result = defs.resolve_job_def("build_partition").execute_in_process(
        tags={"dagster/asset_partition_range_start": "batch-0", "dagster/asset_partition_range_end": "batch-2"},
        instance=instance,
    )
    assert result.success
    assert _built(tmp_path / "out") == ["batch-0", "batch-1", "batch-2"]
