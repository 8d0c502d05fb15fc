"""A Celery cluster on loopback for the system tests: Redis, two Celery workers (each in its own
mount namespace, with a private tmpfs over $DAGSTER_HOME/storage) and the instance on the test's
PostgreSQL; and what the tests ask of it (builds, runs, the worker that ran a step)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from ..commands import build_arguments
from .cluster import REPO, CeleryWorker, Postgres, Redis, instance_yaml, wait_until

FIELDS = "uid,text,blob:base64,n:int64,meta:json"
SHARD_SIZE_LIMIT = 1000
VISIBILITY_TIMEOUT = 60  # seconds: the bound on a lost worker's step; longer than any step here (Redis delivers a
# task again once it is unacknowledged for this long, even to a worker still running it)
STEP_KILL_BOUND = 20  # seconds from a step process's SIGKILL to the run's FAILURE
BATCHES = 6
BUILD_TAG = {"mds/launched_by": "mds-assets build"}
PARTITION_STEPS = {"batch_pipeline"}  # raw_samples -> selected_samples -> mds_shards, one step


class Cluster:
    def __init__(self, root: Path, postgres: Postgres) -> None:
        self.root = root
        self.postgres = postgres
        self.redis = Redis()
        self.home = root / "home"
        self.workers: list[CeleryWorker] = []

    def start(self) -> None:
        self.redis.start()
        self.home.mkdir()
        (self.home / "dagster.yaml").write_text(instance_yaml(self.postgres.create_database("dagster")))
        # The code location's environment, on the workers too (as one image and one env everywhere):
        # a run launched without run config takes its settings from the defaults of the process
        # that runs each step. `mds-assets build` passes them as run config instead.
        self.env = {
            "MDS_EXECUTOR": "celery",
            "MDS_CELERY_BROKER": self.redis.url,
            "MDS_CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            "DAGSTER_DISABLE_TELEMETRY": "1",
            # the dataset `mds-assets build` makes here too: one instance holds one dataset
            "MDS_RAW_URL": str(self.root / "raw"),
            "MDS_OUT_URL": str(self.root / "out"),
            "MDS_FIELDS": FIELDS,
            "MDS_SHARD_SIZE_LIMIT": str(SHARD_SIZE_LIMIT),
            "MDS_PARTITION_BYTES": "1",  # a partition per batch
            "MDS_SENSOR_INTERVAL_SECONDS": "5",
        }
        self.workers = [
            CeleryWorker(name, self.home, self.redis.url, self.env, self.root, VISIBILITY_TIMEOUT)
            for name in ("worker-1", "worker-2")
        ]
        self.ensure_workers()

    def ensure_workers(self) -> None:
        dead = [worker for worker in self.workers if not worker.alive()]
        for worker in dead:
            worker.launch()
        for worker in dead:
            worker.wait_ready()

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.redis.stop()

    def instance(self) -> DagsterInstance:
        return DagsterInstance.from_config(str(self.home))

    def worker(self, hostname: str) -> CeleryWorker:
        return next(worker for worker in self.workers if worker.hostname == hostname)


def build_command(raw: Path, out: Path) -> list[str]:
    return [
        str(Path(sys.executable).parent / "mds-assets"),
        *build_arguments(str(raw), str(out), FIELDS),
        "--shard-size-limit",
        str(SHARD_SIZE_LIMIT),
        "--partition-bytes",
        "1",  # a partition per batch: the runs spread over the workers
        "--quiet",
    ]


def run_build(raw: Path, out: Path, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        build_command(raw, out), env={**os.environ, **env}, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def published(out: Path) -> dict[str, bytes]:
    """The published dataset: every file at the output root (shards, index, manifests)."""
    return {path.name: path.read_bytes() for path in sorted(out.iterdir()) if path.is_file()}


def celery_hosts(instance: DagsterInstance, run_id: str) -> dict[str, str]:
    """step key -> the Celery worker that ran it, from the engine events the workers record."""
    hosts = {}
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        metadata = entry.dagster_event.engine_event_data.metadata or {}
        if "Celery worker" in metadata:
            hosts[entry.step_key] = metadata["Celery worker"].value
    return hosts


def build_runs(instance: DagsterInstance, partition: str | None = None):
    tags = dict(BUILD_TAG, **({"dagster/partition": partition} if partition else {}))
    return instance.get_runs(RunsFilter(job_name="build_partition", tags=tags))


def write_big_batch(raw: Path, name: str, records: int) -> Path:
    """A batch whose steps take seconds, so that a process can be killed while one runs."""
    blob = base64.b64encode(bytes(range(96))).decode()
    path = raw / name
    with path.open("w") as file:
        for start in range(0, records, 10_000):
            file.write(
                "".join(
                    f'{{"uid": "big-{n}", "text": "sample {n} of the big batch", "blob": "{blob}", "n": {n}, '
                    f'"meta": {{"batch": 99, "tags": ["a", {n}]}}}}\n'
                    for n in range(start, min(records, start + 10_000))
                )
            )
    return path


class StepWatch:
    """Waits for a Celery worker to start `step` of a build run of `partition` begun after this was made."""

    def __init__(self, instance: DagsterInstance, partition: str, step: str) -> None:
        self.instance, self.partition, self.step = instance, partition, step
        self.earlier = {run.run_id for run in build_runs(instance, partition)}

    def wait(self, timeout: float = 60) -> tuple[str, str]:
        """(run id, worker hostname)."""

        def started():
            for run in build_runs(self.instance, self.partition):
                host = run.run_id not in self.earlier and celery_hosts(self.instance, run.run_id).get(self.step)
                if host:
                    return run.run_id, host
            return None

        return wait_until(started, timeout, f"step {self.step} of {self.partition} on a worker", interval=0.05)


def run_end(instance: DagsterInstance, run_id: str, timeout: float) -> tuple[DagsterRunStatus, float]:
    """The run's final status, and when this process saw it (time.monotonic)."""

    def ended():
        run = instance.get_run_by_id(run_id)
        return (
            run.status
            if run.status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
            else None
        )

    status = wait_until(ended, timeout, f"run {run_id} ending", interval=0.1)
    return status, time.monotonic()


def start_build(cluster, raw: Path, out: Path) -> subprocess.Popen:
    """`mds-assets build` on the cluster, in its own process group (so a test can stop it whole)."""
    return subprocess.Popen(
        build_command(raw, out),
        env={**os.environ, **cluster.env, "DAGSTER_HOME": str(cluster.home)},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
