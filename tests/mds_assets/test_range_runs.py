"""Each batch is read once, the raw URL is listed once, and one run builds a range of
partitions, each still materialised, checked and reported on its own."""

import fsspec
import pytest
from dagster import AssetCheckKey, AssetKey, AssetRecordsFilter
from fsspec.implementations.local import LocalFileSystem

from mds_assets.build import build
from mds_assets.core import raw_sources
from mds_assets.core.grouping import RawGroup
from mds_assets.core.raw_sources import RawBatch
from mds_assets.keys import MDS_SHARDS, RAW_SAMPLES, SELECTED_SAMPLES

from .conftest import record, snapshot, write_batch

PARTITION_ASSETS = (RAW_SAMPLES, SELECTED_SAMPLES, MDS_SHARDS)


@pytest.fixture
def raw_reads(monkeypatch, raw_dir):
    """Counts what touches the raw folder: files opened (by path) and listings of its root."""
    opened: list[str] = []
    listings: list[str] = []
    real_open, real_ls = fsspec.open, LocalFileSystem.ls

    def counting_open(url, *args, **kwargs):
        if str(url).startswith(str(raw_dir)):
            opened.append(str(url))
        return real_open(url, *args, **kwargs)

    def counting_ls(self, path, *args, **kwargs):
        if str(path).rstrip("/") == str(raw_dir):
            listings.append(path)
        return real_ls(self, path, *args, **kwargs)

    real_open_batch = raw_sources._open_batch_file  # a local batch file is opened by path, not through fsspec

    def counting_open_batch(batch, *args, **kwargs):
        if batch.url.startswith(str(raw_dir)):
            opened.append(batch.url)
        return real_open_batch(batch, *args, **kwargs)

    monkeypatch.setattr(fsspec, "open", counting_open)
    monkeypatch.setattr(raw_sources, "_open_batch_file", counting_open_batch)
    monkeypatch.setattr(LocalFileSystem, "ls", counting_ls)
    return opened, listings


def test_a_build_reads_each_batch_once_and_lists_the_raw_url_once(instance, settings, raw_dir, raw_reads):
    opened, listings = raw_reads
    assert build(settings, workers=1, progress=False).ok
    assert sorted(opened) == sorted(str(raw_dir / f"batch-{n}.jsonl") for n in range(3))
    assert len(listings) == 1


def test_one_run_builds_every_partition_and_each_is_materialised_and_checked_on_its_own(instance, settings):
    assert build(settings, workers=1, progress=False).ok
    runs = [run for run in instance.get_runs() if run.job_name == "build_partition"]
    assert len(runs) == 1
    (run,) = runs
    assert (run.tags["dagster/asset_partition_range_start"], run.tags["dagster/asset_partition_range_end"]) == (
        "batch-0",
        "batch-2",
    )
    keys = {"batch-0", "batch-1", "batch-2"}
    for asset in PARTITION_ASSETS:
        assert instance.get_materialized_partitions(asset) == keys, asset
    evaluations = [
        record.event.dagster_event.event_specific_data
        for record in instance.event_log_storage.get_asset_check_execution_history(
            AssetCheckKey(MDS_SHARDS, "shard_size"), limit=10
        )
    ]
    assert {e.partition for e in evaluations if e.passed} == keys

    shards = _latest_metadata(instance, MDS_SHARDS, "batch-1")
    assert shards["records"].value == 40 and shards["dagster/row_count"].value == 40
    assert shards["fields"].value["extra"] == "string"  # the full profile, unselected fields too
    raw = _latest_metadata(instance, RAW_SAMPLES, "batch-1")
    assert raw["batch"].value == "batch-1.jsonl" and "1-0" in raw["preview"].value
    selected = _latest_metadata(instance, SELECTED_SAMPLES, "batch-1")
    assert selected["dropped_fields"].value == ["extra"]


def test_a_partition_failing_deep_in_its_batch_leaves_the_others_of_its_run_built(
    instance, settings, raw_dir, tmp_path
):
    assert build(settings, workers=1, progress=False).ok
    published = {name: data for name, data in snapshot(tmp_path / "out").items() if "/" not in name}
    records = [record(1, n) for n in range(40)]
    records[29]["n"] = "thirty"  # past the preview: found while writing
    write_batch(raw_dir, "batch-1.jsonl", records)
    write_batch(raw_dir, "batch-0.jsonl", [record(0, n) for n in range(41)])  # changed too, and fine
    write_batch(raw_dir, "batch-2.jsonl", [record(2, n) for n in range(42)])

    report = build(settings, workers=1, progress=False)

    assert report.failed == {
        "batch-1": "batch batch-1.jsonl, line 30, field 'n': a JSON string cannot be encoded as int64 (accepts integer)"
    }
    assert sorted(report.built) == ["batch-0", "batch-2"]
    runs = [run for run in instance.get_runs() if run.job_name == "build_partition"]
    assert len(runs) == 2  # the first build's, and this one's: batch-0 to batch-2 in one run
    assert _latest_metadata(instance, MDS_SHARDS, "batch-0")["records"].value == 41
    assert _latest_metadata(instance, MDS_SHARDS, "batch-2")["records"].value == 42
    assert _latest_metadata(instance, MDS_SHARDS, "batch-1")["records"].value == 40  # the previous build's
    now = {name: data for name, data in snapshot(tmp_path / "out").items() if "/" not in name}
    assert now == published  # nothing published while a partition fails


def _latest_metadata(instance, asset: AssetKey, partition: str) -> dict:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset, asset_partitions=[partition]), limit=1
    ).records
    return records[0].event_log_entry.asset_materialization.metadata


@pytest.mark.parametrize("name, where", [("batch-0.jsonl", "secret/batch-0.jsonl"), ("..", "raw/..")])
def test_a_listing_of_another_raw_url_in_the_run_config_is_refused_naming_the_batch(
    instance, settings, tmp_path, name, where
):
    from mds_assets.runs import run_config

    from .test_assets import job

    instance.add_dynamic_partitions("raw_batches", ["batch-0"])
    elsewhere = RawBatch(name, str(tmp_path / where), "jsonl", "f", 10)
    config = {"ops": run_config(settings, [RawGroup((elsewhere,))])["ops"]}
    result = job("build_partition", settings).execute_in_process(
        run_config=config, partition_key="batch-0", instance=instance, raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert f"listed batch {name!r}" in str(failure.step_failure_data.error)
    assert "is not a batch directly under the raw URL" in str(failure.step_failure_data.error)


def test_a_range_run_reports_a_removed_batch_and_builds_the_rest(instance, settings, raw_dir):
    from .test_assets import job

    instance.add_dynamic_partitions("raw_batches", ["batch-0", "batch-1", "batch-2"])
    (raw_dir / "batch-1.jsonl").unlink()
    result = job("build_partition", settings).execute_in_process(
        tags={"dagster/asset_partition_range_start": "batch-0", "dagster/asset_partition_range_end": "batch-2"},
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    failed = failure.step_failure_data.user_failure_data.metadata["failed_partitions"].value
    assert list(failed) == ["batch-1"] and "(was it removed?)" in failed["batch-1"]
    assert "1 of 3 partitions failed — batch-1: no raw batch" in str(failure.step_failure_data.error)
    assert instance.get_materialized_partitions(MDS_SHARDS) == {"batch-0", "batch-2"}
