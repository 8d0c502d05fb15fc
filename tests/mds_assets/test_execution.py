"""The executor chosen by MDS_EXECUTOR, the run config `mds-assets build` gives, and `mds-assets build`
through reconstructable jobs on another executor than the default."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, in_process_executor, multiprocess_executor

from mds_assets import execution
from mds_assets.execution import ExecutorSettingError, executor_from_environment
from mds_assets.runs import run_config

from ..commands import build_arguments
from .conftest import FIELDS, record, snapshot, without_build_times, write_batch

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "value, expected",
    [("", in_process_executor), ("in_process", in_process_executor), ("multiprocess", multiprocess_executor)],
)
def test_the_executor_follows_mds_executor(monkeypatch, value, expected):
    monkeypatch.setenv("MDS_EXECUTOR", value)
    assert executor_from_environment() is expected


def test_celery_reads_broker_and_backend_through_envvar(monkeypatch):
    monkeypatch.setenv("MDS_EXECUTOR", "celery")
    monkeypatch.delenv("MDS_CELERY_BROKER", raising=False)
    with pytest.raises(ExecutorSettingError, match="needs MDS_CELERY_BROKER"):
        executor_from_environment()
    monkeypatch.setenv("MDS_CELERY_BROKER", "redis://127.0.0.1:1/0")
    monkeypatch.delenv("MDS_CELERY_BACKEND", raising=False)
    executor = executor_from_environment()
    assert executor.name == "celery"
    config = executor.config_schema.default_value if executor.config_schema.default_provided else None
    assert config is None or "redis://" not in str(config)  # URLs stay in the environment
    monkeypatch.setenv("MDS_CELERY_BACKEND", "redis://127.0.0.1:1/1")
    assert executor_from_environment().name == "celery"


def test_a_bad_executor_name_is_refused(monkeypatch):
    monkeypatch.setenv("MDS_EXECUTOR", "dask")
    with pytest.raises(ExecutorSettingError, match="expected one of in_process, multiprocess, celery, k8s"):
        execution.executor_name()


def test_a_distributed_executor_refuses_a_sqlite_instance(monkeypatch, instance):
    monkeypatch.setenv("MDS_EXECUTOR", "celery")
    with pytest.raises(ExecutorSettingError, match="cannot share the SQLite instance"):
        execution.check_instance(instance)
    monkeypatch.setenv("MDS_EXECUTOR", "in_process")
    execution.check_instance(instance)


def test_run_config_carries_every_setting_and_the_listing(settings):
    config = run_config(settings, settings.raw_groups())
    assert config["resources"] == {"mds_settings": {"config": settings.model_dump()}}
    listed = config["ops"]["batch_pipeline"]["config"]["batches"]
    assert [entry["name"] for entry in listed] == ["batch-0.jsonl", "batch-1.jsonl", "batch-2.jsonl"]
    assert [entry["partition"] for entry in listed] == ["batch-0", "batch-1", "batch-2"]  # each its group's key
    assert "ops" not in run_config(settings)  # publish_index has no batch_pipeline op


@pytest.mark.timeout(600)  # a process per step: ~20 s alone, 155 s measured on a loaded 2-core machine
def test_mds_assets_build_on_the_multiprocess_executor_gives_the_same_bytes(tmp_path):
    raw = tmp_path / "raw"
    write_batch(raw, "batch-0.jsonl", [record(0, n) for n in range(30)])
    outputs = {}
    for name in ("in_process", "multiprocess"):
        home = tmp_path / f"home-{name}"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n# kept as it is\n")
        out = tmp_path / f"out-{name}"
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "mds-assets"),
                *build_arguments(str(raw), str(out), FIELDS),
                "--shard-size-limit",
                "1000",
                "--quiet",
            ],
            env={**os.environ, "DAGSTER_HOME": str(home), "MDS_EXECUTOR": name},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert (home / "dagster.yaml").read_text().endswith("# kept as it is\n")  # never overwritten
        outputs[name] = without_build_times(snapshot(out))
        with DagsterInstance.from_config(str(home)) as instance:
            (run,) = [r for r in instance.get_runs() if r.job_name == "build_partition"]
            assert run.run_config["resources"]["mds_settings"]["config"]["out_url"] == str(out)
    assert outputs["in_process"] == outputs["multiprocess"]


def test_a_bad_executor_name_fails_the_build_with_a_message(tmp_path):
    raw = tmp_path / "raw"
    write_batch(raw, "batch-0.jsonl", [record(0, n) for n in range(3)])
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "mds-assets"),
            *build_arguments(str(raw), str(tmp_path / "out"), FIELDS),
            "--quiet",
        ],
        env={**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "MDS_EXECUTOR": "dask"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "MDS_EXECUTOR='dask'" in done.stderr and "Traceback" not in done.stderr
