"""Scaling out on loopback: PostgreSQL, Redis and two Celery workers, each worker in its own mount
namespace with a private tmpfs over $DAGSTER_HOME/storage (nothing passes through the
orchestrator's disk). One cluster for the module; the tests run in file order."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from ..mds_assets.conftest import record, snapshot, write_batch
from .cluster import REPO, CeleryWorker, Postgres, Redis, instance_yaml, wait_until

pytestmark = pytest.mark.slow

FIELDS = "uid,text,blob:base64,n:int64,meta:json"
SHARD_SIZE_LIMIT = 1000
VISIBILITY_TIMEOUT = 15  # seconds: the bound on a lost worker's step, short for the test
STEP_KILL_BOUND = 20  # seconds from a step process's SIGKILL to the run's FAILURE
BATCHES = 6
BUILD_TAG = {"mds/launched_by": "mds-assets build"}
PARTITION_STEPS = {"raw_samples", "selected_samples", "mds_shards"}


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.postgres = Postgres()
        self.redis = Redis()
        self.home = root / "home"
        self.workers: list[CeleryWorker] = []

    def start(self) -> None:
        self.postgres.start()
        self.redis.start()
        self.home.mkdir()
        (self.home / "dagster.yaml").write_text(instance_yaml(self.postgres.create_database("dagster")))
        self.env = {"MDS_EXECUTOR": "celery", "MDS_CELERY_BROKER": self.redis.url,
                    "MDS_CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT), "DAGSTER_DISABLE_TELEMETRY": "1"}
        self.workers = [CeleryWorker(name, self.home, self.redis.url, self.env, self.root, VISIBILITY_TIMEOUT)
                        for name in ("worker-1", "worker-2")]
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
        self.postgres.stop()

    def instance(self) -> DagsterInstance:
        return DagsterInstance.from_config(str(self.home))

    def worker(self, hostname: str) -> CeleryWorker:
        return next(worker for worker in self.workers if worker.hostname == hostname)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("celery"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def raw(cluster) -> Path:
    raw = cluster.root / "raw"
    for batch in range(BATCHES):
        write_batch(raw, f"batch-{batch}.jsonl", [record(batch, n) for n in range(60)])
    return raw


def build_command(raw: Path, out: Path) -> list[str]:
    return [str(Path(sys.executable).parent / "mds-assets"), "build", "--raw", str(raw), "--out", str(out),
            "--fields", FIELDS, "--shard-size-limit", str(SHARD_SIZE_LIMIT), "--quiet"]


def run_build(raw: Path, out: Path, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(build_command(raw, out), env={**os.environ, **env}, cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


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


def test_a_celery_build_takes_every_step_to_the_workers_and_publishes_the_same_bytes(cluster, raw, tmp_path):
    reference_home = tmp_path / "reference-home"
    reference = run_build(raw, tmp_path / "reference", {"DAGSTER_HOME": str(reference_home),
                                                        "MDS_EXECUTOR": ""})
    assert reference.returncode == 0, reference.stderr
    started = time.monotonic()
    built = run_build(raw, cluster.root / "out", {**cluster.env, "DAGSTER_HOME": str(cluster.home)})
    seconds = time.monotonic() - started
    assert built.returncode == 0, built.stdout + built.stderr
    print(f"celery build of {BATCHES} partitions with 2 workers: {seconds:.1f} s")

    assert published(cluster.root / "out") == published(tmp_path / "reference")
    assert {"index.mds", "mds_manifest.json"} <= set(published(cluster.root / "out"))

    instance = cluster.instance()
    runs = build_runs(instance)
    assert len(runs) == BATCHES and all(run.status == DagsterRunStatus.SUCCESS for run in runs)
    hosts = {}
    for run in runs:
        steps = celery_hosts(instance, run.run_id)
        assert set(steps) == PARTITION_STEPS, (run.tags, steps)
        hosts.update({(run.run_id, step): host for step, host in steps.items()})
    assert set(hosts.values()) == {worker.hostname for worker in cluster.workers}, "both workers took steps"
    # the step outputs are beside the data, never on the orchestrator's disk
    assert not (cluster.home / "storage" / "raw_samples").exists()
    assert len(list((cluster.root / "out" / ".dagster-io" / "raw_samples").glob("*.pickle"))) == BATCHES
