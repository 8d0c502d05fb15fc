"""`mds-assets build`: incremental, parallel = sequential, and all-or-nothing publishing."""

import collections
import os
import sqlite3
import subprocess
import sys

import pytest
from dagster import AssetCheckResult, asset, asset_check, materialize

from mds_assets.build import build, dagster_instance, open_instance
from mds_assets.cli import main
from mds_assets.compute_logs import FileComputeLogManager
from mds_assets.resources import MDSSettings
from writer import MDSDataset

from ..commands import MDS_ASSETS, build_arguments
from .conftest import record, snapshot, without_build_times, write_batch


def test_an_incremental_build_runs_only_new_and_changed_batches(instance, settings, raw_dir):
    first = build(settings, workers=1, progress=False)
    assert sorted(first.built) == ["batch-0", "batch-1", "batch-2"] and first.ok
    write_batch(raw_dir, "batch-3.jsonl", [record(3, n) for n in range(10)])
    second = build(settings, workers=1, progress=False)
    assert second.built == ["batch-3"] and sorted(second.unchanged) == ["batch-0", "batch-1", "batch-2"]
    write_batch(raw_dir, "batch-0.jsonl", [record(0, n) for n in range(5)])
    third = build(settings, workers=1, progress=False)
    assert third.built == ["batch-0"]
    assert len(MDSDataset(settings.out_url)) == 5 + 40 + 40 + 10


def test_changed_settings_rebuild_every_partition(instance, settings):
    build(settings, workers=1, progress=False)
    gz = MDSSettings(**{**settings.model_dump(), "compression": "gz"})
    report = build(gz, workers=1, progress=False)
    assert sorted(report.built) == ["batch-0", "batch-1", "batch-2"] and report.ok
    assert MDSDataset(settings.out_url).compression.scheme == "gz"


def test_parallel_and_sequential_builds_give_the_same_bytes(raw_dir, tmp_path, monkeypatch):
    outputs = {}
    for workers in (1, 2):
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / f"home-{workers}"))  # one instance per dataset
        settings = MDSSettings(
            raw_url=str(raw_dir),
            out_url=str(tmp_path / f"out-{workers}"),
            fields=["uid", "text", "n:int64"],
            shard_size_limit=700,
            partition_bytes=1,  # a partition per file: three runs to share between the workers
        )
        report = build(settings, workers=workers, progress=False)
        assert report.ok and len(report.built) == 3
        outputs[workers] = without_build_times(snapshot(tmp_path / f"out-{workers}"))
    assert outputs[1] == outputs[2]
    assert len(outputs[1]) > 10


def test_a_failing_partition_leaves_the_published_dataset_exactly_as_it_was(instance, settings, raw_dir, tmp_path):
    assert build(settings, workers=2, progress=False).ok
    published = {name: data for name, data in snapshot(tmp_path / "out").items() if "/" not in name}
    bad = [record(9, n) for n in range(4)]
    bad[2]["n"] = "not a number"
    write_batch(raw_dir, "batch-9.jsonl", bad)
    write_batch(raw_dir, "batch-0.jsonl", [record(0, n) for n in range(3)])  # a good change, also held back
    report = build(settings, workers=2, progress=False)
    assert not report.ok and list(report.failed) == ["batch-9"]
    assert "batch batch-9.jsonl, line 3, field 'n'" in report.failed["batch-9"]
    assert report.dataset_state.startswith(f"the dataset at {settings.out_url} is unchanged")
    assert {name: data for name, data in snapshot(tmp_path / "out").items() if "/" not in name} == published


def test_a_failed_rebuild_keeps_the_partitions_previous_dataset(instance, settings, raw_dir, tmp_path):
    assert build(settings, workers=1, progress=False).ok
    partition = tmp_path / "out" / "partitions" / "batch-0"
    before = snapshot(partition)
    broken = [record(0, n) for n in range(40)]
    broken[30]["blob"] = "not base64!"  # a string, as profiled: it fails only while shards are written
    write_batch(raw_dir, "batch-0.jsonl", broken)
    report = build(settings, workers=1, progress=False)
    assert "batch batch-0.jsonl, line 31, field 'blob': not valid base64" in report.failed["batch-0"]
    assert snapshot(partition) == before
    assert not (tmp_path / "out" / "partitions" / ".staging" / "batch-0" / "index.mds").exists()


def test_the_command_exits_non_zero_naming_batch_line_and_field(instance, settings, raw_dir, capsys):
    write_batch(raw_dir, "zz.jsonl", [{"uid": "1", "text": "x", "blob": "AA==", "n": 1}])  # no "meta"
    status = main(
        [
            *build_arguments(settings.raw_url, settings.out_url, settings.fields),
            "--shard-size-limit",
            "1000",
            "--quiet",
            "--workers",
            "1",
        ]
    )
    assert status == 1
    err = capsys.readouterr().err
    assert "FAILED zz: batch zz.jsonl, field 'meta': in no record" in err
    assert "not published: " in err and "held no dataset and still holds none" in err
    assert not os.path.exists(os.path.join(settings.out_url, "index.mds"))


def test_the_command_builds_and_prints_how_to_load(instance, settings, capsys):
    status = main(
        [
            *build_arguments(settings.raw_url, settings.out_url, settings.fields),
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert "published 120 samples" in out and "check index_consistency: passed" in out
    assert f"MDSDataset('{settings.out_url}', decoders=\"auto\")" in out


def test_demo_generates_raw_data_and_builds_it(instance, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--quiet"]) == 0
    dataset = MDSDataset(str(tmp_path / "data" / "mds"))
    assert len(dataset) == 1000
    assert dataset[0]["image"].startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "bad, message", [(["--fields", "a:gif"], "unknown encoding"), (["--compression", "zip"], "unknown compression")]
)
def test_bad_settings_fail_before_any_work(instance, settings, bad, message, capsys):
    arguments = {"--raw": settings.raw_url, "--out": settings.out_url, "--fields": "uid"}
    arguments.update(dict(zip(bad[::2], bad[1::2])))
    assert main(["build", *[x for pair in arguments.items() for x in pair], "--quiet"]) == 1
    assert message in capsys.readouterr().err


def test_parquet_batches_build_like_jsonl(instance, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as parquet

    raw = tmp_path / "parquet-raw"
    raw.mkdir()
    for batch in range(2):
        rows = [{"uid": f"{batch}-{n}", "image": bytes([n % 256]) * 20, "label": n % 10} for n in range(50)]
        parquet.write_table(pa.Table.from_pylist(rows), raw / f"shard-{batch}.parquet")
    settings = MDSSettings(
        raw_url=str(raw), out_url=str(tmp_path / "out"), fields=["uid", "image:bytes", "label:int64"]
    )
    assert build(settings, workers=1, progress=False).ok
    dataset = MDSDataset(settings.out_url)
    assert len(dataset) == 100 and dataset[51] == {
        "uid": b"1-1",
        "image": b"\x01" * 20,
        "label": (1).to_bytes(8, "little"),
    }


def test_build_runs_show_as_the_named_jobs(instance, settings):
    """Not as `__ephemeral_asset_job__` in the UI's Runs: the jobs a user can find and relaunch."""
    assert build(settings, workers=2, progress=False).ok
    runs = instance.get_runs()
    partition_runs = [run for run in runs if run.job_name == "build_partition"]
    assert len(partition_runs) == 2  # one range of partitions per worker
    ranges = sorted(
        (run.tags.get("dagster/asset_partition_range_start") or run.tags["dagster/partition"]) for run in partition_runs
    )
    assert ranges[0] == "batch-0" and ranges[1] in ("batch-1", "batch-2")
    assert all(run.tags["mds/launched_by"] == "mds-assets build" for run in runs)
    assert {run.job_name for run in runs} == {"build_partition", "publish_index"}


def test_the_instance_mds_assets_creates_has_telemetry_off(settings, tmp_path, monkeypatch):
    """Dagster's telemetry notice must not print in the middle of the progress bar on a new DAGSTER_HOME."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_DISABLE_TELEMETRY"}
    env["DAGSTER_HOME"] = str(tmp_path / "new_home")
    command = (
        "from mds_assets.cli import main; raise SystemExit(main(['build', '--raw', %r, '--out', %r, "
        "'--fields', 'uid,text', '--workers', '1']))" % (settings.raw_url, settings.out_url)
    )
    done = subprocess.run(
        [sys.executable, "-c", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    assert done.returncode == 0, done.stderr
    assert "Telemetry" not in done.stderr + done.stdout
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    instance = dagster_instance()
    try:
        assert instance.get_settings("telemetry") == {"enabled": False}
        assert "enabled: true" in (tmp_path / "new_home" / "dagster.yaml").read_text()  # how to turn it on
    finally:
        instance.dispose()


def test_the_instance_it_creates_dequeues_every_second(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    instance = dagster_instance()
    try:
        assert instance.run_coordinator.dequeue_interval_seconds == 1  # UI runs start within ~1 s
        assert instance.get_settings("telemetry") == {"enabled": False}
    finally:
        instance.dispose()


def test_the_build_instance_captures_step_output_in_files_unless_another_manager_is_configured(tmp_path):
    default, noop = tmp_path / "default", tmp_path / "noop"
    default.mkdir()
    noop.mkdir()
    (default / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    (noop / "dagster.yaml").write_text(
        "compute_logs:\n  module: dagster._core.storage.noop_compute_log_manager\n  class: NoOpComputeLogManager\n"
    )
    instance = open_instance(str(default))
    assert type(instance.compute_log_manager) is FileComputeLogManager
    assert instance.compute_log_manager.inst_data.config_dict == {"base_dir": str(default / "storage")}
    assert type(open_instance(str(noop)).compute_log_manager).__name__ == "NoOpComputeLogManager"


@asset
def counted() -> None:
    return None


@asset_check(asset=counted)
def counted_passes() -> AssetCheckResult:
    return AssetCheckResult(passed=True)


def test_the_instance_it_creates_opens_a_connection_per_database_not_per_event(tmp_path, monkeypatch):
    """Dagster's own SQLite storages open (and close, checkpointing the WAL) a connection for every
    event and query: more than a small partition's build costs."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    instance = dagster_instance()
    opened: collections.Counter[str] = collections.Counter()
    real_connect = sqlite3.dbapi2.connect

    def counting_connect(database, *args, **kwargs):
        opened[os.path.basename(database)] += 1
        return real_connect(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3.dbapi2, "connect", counting_connect)
    try:
        first = materialize([counted, counted_passes], instance=instance)
        after_first = opened.copy()
        later = [materialize([counted, counted_passes], instance=instance) for _ in range(3)]
        events = [len(instance.get_records_for_run(run.run_id).records) for run in later]
    finally:
        instance.dispose()
    assert all(result.success for result in [first, *later]) and min(events) >= 10
    assert opened["index.db"] == after_first["index.db"] and opened["runs.db"] == after_first["runs.db"], opened
    # a run's own database: two connections creating it (Dagster's _initdb inspects it through a
    # second one), one reading it back above, whatever the number of events its run wrote
    assert all(opened[f"{run.run_id}.db"] <= 3 for run in later), opened


def test_a_raw_folder_without_batches_names_what_it_holds_and_what_a_batch_is(instance, tmp_path, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.json").write_text('{"uid": "a"}\n')
    (raw / "b.ndjson").write_text('{"uid": "b"}\n')
    assert main([*build_arguments(raw, tmp_path / "out", "uid"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"no raw batches found under {raw} (it holds a.json, b.ndjson)" in out
    assert "a batch is a *.jsonl (JSON Lines: one object a line), *.jsonl.gz or *.parquet file" in out


def test_ctrl_c_during_a_build_says_what_the_output_holds(instance, settings, capsys, monkeypatch):
    assert main([*build_arguments(settings.raw_url, settings.out_url, settings.fields), "--quiet"]) == 0
    capsys.readouterr()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("mds_assets.cli.build", interrupted)
    assert main([*build_arguments(settings.raw_url, settings.out_url, settings.fields), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "mds-assets: interrupted; the partitions built so far are kept: the same command finishes the build" in err
    assert f"not published: the dataset at {settings.out_url} is unchanged (a dataset of 120 samples" in err


def test_a_reader_gone_before_the_summary_ends_the_build_quietly(settings, tmp_path):
    """`mds-assets build … | head -1` where the reader has gone when the summary is printed: the
    build publishes, and says nothing of the closed pipe."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "DAGSTER_DISABLE_TELEMETRY": "1"}
    command = [*MDS_ASSETS, *build_arguments(settings.raw_url, settings.out_url, "uid"), "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    process.stdout.close()  # the output has nowhere to go
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=120) == 1
    assert stderr == b"", stderr.decode()  # no BrokenPipeError traceback, no "Exception ignored"
    assert len(MDSDataset(settings.out_url)) == 120  # published all the same
