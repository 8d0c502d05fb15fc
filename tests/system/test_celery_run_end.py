"""A run that ends while its Celery step runs stops that step: terminated from the instance (the
UI's Terminate), its orchestrator interrupted (what Dagster's termination does to a run's
process), or its orchestrator killed with `kill -9` (the run is then marked failed, and its step
sees that). No partition is shown materialised by such a run, and a rerun started while the
orphaned step still writes waits for the partition's lock, then completes.

PostgreSQL, Redis and two Celery workers on 127.0.0.1, one cluster for the module; the tests
run in file order (the last one builds and publishes the big batch)."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from celery import Celery
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from mds_assets.keys import MDS_SHARDS
from writer import MDSDataset

from ..mds_assets.conftest import record, write_batch
from .celery_cluster import Cluster, StepWatch, run_end, start_build, write_big_batch
from .cluster import wait_until

pytestmark = pytest.mark.system

BIG_RECORDS = 100_000  # ~25,000 one-kilobyte shards: a step of half a minute or more, on a worker
STOP_BOUND = 20  # seconds from a run's end (or its orchestrator's interrupt) to its task leaving the worker
SMALL_RECORDS = 60


@pytest.fixture(scope="module")
def raw(cluster) -> Path:
    raw = cluster.root / "raw"
    write_batch(raw, "batch-0.jsonl", [record(0, n) for n in range(SMALL_RECORDS)])
    write_big_batch(raw, "big.jsonl", BIG_RECORDS)
    return raw


@pytest.fixture(scope="module")
def celery_app(cluster) -> Celery:
    return Celery(broker=cluster.redis.url, backend=cluster.redis.url)


def active_tasks(app: Celery, cluster: Cluster) -> dict[str, str] | None:
    """task id -> the hostname of the worker running it, as the workers answer `inspect active`;
    None unless every worker answered (a loaded machine may answer late)."""
    hosts = {worker.hostname for worker in cluster.workers}
    replies = app.control.inspect(timeout=3, limit=len(hosts)).active() or {}
    if set(replies) != hosts:
        return None
    return {task["id"]: host for host, tasks in replies.items() for task in tasks}


def answered(app: Celery, cluster: Cluster) -> dict[str, str]:
    return wait_until(lambda: active_tasks(app, cluster), 30, "every worker answering `inspect active`")


def task_of(app: Celery, cluster: Cluster, host: str) -> str:
    """The one task `host` runs (each worker runs one at a time)."""

    def running():
        tasks = [task for task, worker in (active_tasks(app, cluster) or {}).items() if worker == host]
        return tasks[0] if len(tasks) == 1 else None

    return wait_until(running, 30, f"the task {host} runs", interval=0.2)


def wait_task_gone(app: Celery, cluster: Cluster, task: str, what: str) -> float:
    """Seconds until `task` is no longer active on any worker (at most STOP_BOUND)."""
    started = time.monotonic()

    def gone():
        active = active_tasks(app, cluster)
        return active is not None and task not in active

    wait_until(gone, STOP_BOUND, what, interval=0.2)
    return time.monotonic() - started


def shards_materialised_by(instance: DagsterInstance, run_id: str) -> list[str]:
    return [
        entry.dagster_event.partition
        for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
        if entry.dagster_event.asset_key == MDS_SHARDS
    ]


def stop(build: subprocess.Popen) -> None:
    if build.poll() is None:
        os.killpg(build.pid, signal.SIGKILL)
    build.wait(timeout=10)


def test_a_run_terminated_from_the_instance_stops_its_celery_step(cluster, raw, celery_app):
    instance = cluster.instance()
    step_started = StepWatch(instance, "big", "batch_pipeline")
    build = start_build(cluster, raw, cluster.root / "out")
    try:
        run_id, host = step_started.wait()
        task = task_of(celery_app, cluster, host)
        instance.run_coordinator.cancel_run(run_id)  # what the UI's Terminate calls
        seconds = wait_task_gone(celery_app, cluster, task, f"the task of run {run_id} stopping after its termination")
        status, _ = run_end(instance, run_id, timeout=60)
        stdout, stderr = build.communicate(timeout=120)
    finally:
        stop(build)
    print(f"run terminated from the instance -> its task gone from {host} after {seconds:.1f} s; run {status.value}")
    assert status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
    assert shards_materialised_by(instance, run_id) == []
    assert "big" not in instance.get_materialized_partitions(MDS_SHARDS)
    assert build.returncode == 1 and "FAILED big" in stderr, stdout + stderr


def test_an_interrupted_orchestrator_terminates_its_celery_task(cluster, raw, celery_app):
    instance = cluster.instance()
    step_started = StepWatch(instance, "big", "batch_pipeline")
    build = start_build(cluster, raw, cluster.root / "out")
    try:
        run_id, host = step_started.wait()
        task = task_of(celery_app, cluster, host)
        os.killpg(build.pid, signal.SIGINT)  # Ctrl-C; Dagster terminates a run it launched by interrupting it
        seconds = wait_task_gone(celery_app, cluster, task, f"the task of the interrupted run {run_id} stopping")
        status, _ = run_end(instance, run_id, timeout=60)
        build.communicate(timeout=60)
    finally:
        stop(build)
    print(f"orchestrator interrupted -> its task gone from {host} after {seconds:.1f} s; run {status.value}")
    assert status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
    assert shards_materialised_by(instance, run_id) == []
    assert "big" not in instance.get_materialized_partitions(MDS_SHARDS)


def test_a_killed_orchestrator_s_step_stops_once_its_run_failed_and_a_rerun_completes(cluster, raw, celery_app):
    instance = cluster.instance()
    out = cluster.root / "out"
    step_started = StepWatch(instance, "big", "batch_pipeline")
    build = start_build(cluster, raw, out)
    try:
        run_id, host = step_started.wait()
        task = task_of(celery_app, cluster, host)
        os.killpg(build.pid, signal.SIGKILL)  # the orchestrator, with nothing in it running any more
        build.wait(timeout=10)
    finally:
        stop(build)
    time.sleep(2)
    assert task in answered(celery_app, cluster), "the step ran on after its orchestrator was killed"
    assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED

    # A rerun, started while the orphaned step still writes: it marks the killed orchestrator's run
    # failed, the step sees that and stops, and the rerun waits for the partition's lock meanwhile.
    rerun = start_build(cluster, raw, out)
    try:
        wait_until(
            lambda: instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE,
            60,
            f"the rerun marking run {run_id} failed",
            interval=0.1,
        )
        seconds = wait_task_gone(celery_app, cluster, task, f"the step of the failed run {run_id} stopping")
        stdout, stderr = rerun.communicate(timeout=300)
    finally:
        stop(rerun)
    print(f"orchestrator killed -> its step stopped {seconds:.1f} s after its run was marked failed")
    assert shards_materialised_by(instance, run_id) == []
    (stopped,) = instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE)
    assert "failed while this step still ran" in stopped.dagster_event.step_failure_data.error.to_string()
    assert rerun.returncode == 0, stdout + stderr
    assert "partitions built: 1, unchanged: 1" in stdout, stdout  # big, rebuilt by the rerun
    assert json.loads((out / "mds_partitions.json").read_text())["partitions"] == ["batch-0", "big"]
    assert list(MDSDataset(str(out), decoders="auto")) == expected_samples(raw)
    # the big batch has served (its ~25,000 one-kilobyte shards would make every later publish slow)
    (raw / "big.jsonl").unlink()


def expected_samples(raw: Path) -> list[dict]:
    """The raw records of every batch, in partition order, as the published dataset decodes them."""
    samples = []
    for path in (raw / "batch-0.jsonl", raw / "big.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            samples.append(
                {
                    "uid": record["uid"],
                    "text": record["text"],
                    "blob": base64.b64decode(record["blob"]),
                    "n": record["n"],
                    "meta": record["meta"],
                }
            )
    return samples
