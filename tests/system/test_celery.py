"""Scaling out on loopback: PostgreSQL, Redis and two Celery workers, each worker in its own mount
namespace with a private tmpfs over $DAGSTER_HOME/storage (nothing passes through the
orchestrator's disk; celery_cluster.py). One cluster for the module; the tests run in file order."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from ..mds_assets.conftest import record, snapshot, write_batch
from .celery_cluster import (
    BATCHES,
    BUILD_TAG,
    PARTITION_STEPS,
    STEP_KILL_BOUND,
    VISIBILITY_TIMEOUT,
    StepWatch,
    build_runs,
    celery_hosts,
    published,
    run_build,
    run_end,
    start_build,
    write_big_batch,
)
from .cluster import REPO, wait_until
from .dagster_server import DagsterDev
from .test_dagster_ui import ADD_PARTITION, check_executions, launch, wait_for_run

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def raw(cluster) -> Path:
    raw = cluster.root / "raw"
    for batch in range(BATCHES):
        write_batch(raw, f"batch-{batch}.jsonl", [record(batch, n) for n in range(60)])
    return raw


def test_a_celery_build_takes_every_step_to_the_workers_and_publishes_the_same_bytes(cluster, raw, tmp_path):
    reference_home = tmp_path / "reference-home"
    reference = run_build(raw, tmp_path / "reference", {"DAGSTER_HOME": str(reference_home), "MDS_EXECUTOR": ""})
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
    assert len(runs) == 2 and all(run.status == DagsterRunStatus.SUCCESS for run in runs)  # a range per worker
    hosts = {}
    for run in [*runs, *instance.get_runs(RunsFilter(job_name="publish_index", tags=BUILD_TAG))]:
        steps = celery_hosts(instance, run.run_id)
        if run.job_name == "build_partition":
            assert set(steps) == PARTITION_STEPS, (run.tags, steps)
        hosts.update({(run.run_id, step): host for step, host in steps.items()})
    assert set(hosts.values()) == {worker.hostname for worker in cluster.workers}, "both workers took steps"
    for asset in ("raw_samples", "selected_samples", "mds_shards"):  # each partition materialised on its own
        assert instance.get_materialized_partitions(AssetKey(asset)) == {f"batch-{n}" for n in range(BATCHES)}
    # no step hands data to another (the batch pipeline is one step; mds_index reads storage): no step
    # output on any machine's disk
    assert not any((cluster.home / "storage" / asset).exists() for asset in ("raw_samples", "batch_pipeline"))


def test_a_killed_step_process_fails_the_run_within_seconds_and_publishes_nothing(cluster, raw):
    out = cluster.root / "out"
    before = snapshot(out)
    write_big_batch(raw, "big.jsonl", 150_000)
    instance = cluster.instance()
    step_started = StepWatch(instance, "big", "batch_pipeline")
    build = start_build(cluster, raw, out)
    try:
        run_id, host = step_started.wait()
        (step_process, *_) = cluster.worker(host).pool_processes()
        step_process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        status, ended = run_end(instance, run_id, timeout=60)
        stdout, stderr = build.communicate(timeout=60)
    finally:
        if build.poll() is None:
            os.killpg(build.pid, signal.SIGKILL)
            build.wait(timeout=10)
    print(f"step process killed -> run {status.value} after {ended - killed:.1f} s")
    assert status == DagsterRunStatus.FAILURE
    assert ended - killed < STEP_KILL_BOUND
    assert build.returncode == 1 and "FAILED big" in stderr, stdout + stderr
    assert snapshot(out) == before, "the published dataset changed"


def test_a_lost_worker_s_step_is_taken_by_the_other_within_the_visibility_timeout(cluster, raw):
    cluster.ensure_workers()  # the pool restarts a killed child by itself; a whole worker is started again
    out = cluster.root / "out"
    instance = cluster.instance()
    step_started = StepWatch(instance, "big", "batch_pipeline")
    build = start_build(cluster, raw, out)
    try:
        run_id, host = step_started.wait()
        lost = cluster.worker(host)
        lost.kill_all()  # the whole worker, pool and all, as when its machine dies
        killed = time.monotonic()
        bound = VISIBILITY_TIMEOUT + 5 + 60  # redelivery + restore interval + the step's own run
        status, ended = run_end(instance, run_id, timeout=bound)
        stdout, stderr = build.communicate(timeout=120)
    finally:
        if build.poll() is None:
            os.killpg(build.pid, signal.SIGKILL)
            build.wait(timeout=10)
    print(f"whole worker killed -> run {status.value} after {ended - killed:.1f} s")
    assert status == DagsterRunStatus.SUCCESS, stdout + stderr
    (other,) = [worker for worker in cluster.workers if worker is not lost]
    assert celery_hosts(instance, run_id)["batch_pipeline"] == other.hostname
    assert build.returncode == 0, stdout + stderr
    assert json.loads((out / "mds_partitions.json").read_text())["partitions"][0] == "batch-0"
    assert "big" in json.loads((out / "mds_partitions.json").read_text())["partitions"]
    # the big batch has served (its ~37,500 one-kilobyte shards would make every later publish slow)
    (raw / "big.jsonl").unlink()
    shutil.rmtree(out / "partitions" / "big")


@pytest.fixture(scope="module")
def server(cluster):
    """`dagster dev` on the cluster's instance (PostgreSQL), MDS_EXECUTOR=celery in its environment."""
    raw = cluster.root / "raw"
    for batch in (1, 2):
        write_batch(raw, f"ui-{batch}.jsonl", [record(batch, n) for n in range(30)])
    assert cluster.env["MDS_RAW_URL"] == str(raw)
    dagster = DagsterDev(
        cluster.home,
        cluster.env,
        cluster.root / "dagster-dev.log",
        instance_config=(cluster.home / "dagster.yaml").read_text(),
    )
    try:
        dagster.start()
        yield dagster
    finally:
        dagster.stop()


def step_events(instance: DagsterInstance, run_id: str, step: str) -> dict:
    return {
        entry.dagster_event.event_type: entry.timestamp
        for entry in instance.all_logs(run_id)
        if entry.is_dagster_event and entry.step_key == step
    }


def step_interval(instance: DagsterInstance, run_id: str, step: str) -> tuple[float, float]:
    times = step_events(instance, run_id, step)
    return times[DagsterEventType.STEP_START], times[DagsterEventType.STEP_SUCCESS]


@pytest.mark.timeout(900)
def test_runs_launched_through_graphql_run_on_the_workers_and_publishes_never_overlap(cluster, server):
    cluster.ensure_workers()
    server.graphql(ADD_PARTITION, {"key": "ui-1"})
    run_id = launch(server, "build_partition", "ui-1")
    assert wait_for_run(server, run_id) == "SUCCESS"
    instance = cluster.instance()
    assert set(celery_hosts(instance, run_id)) == PARTITION_STEPS

    # Two publishes at once, on two workers: the second waits for the output's lock (and says so
    # in its log) while the first publishes; both succeed, one after the other.
    first, second = launch(server, "publish_index"), launch(server, "publish_index")  # at once
    assert wait_for_run(server, first, 300) == "SUCCESS" and wait_for_run(server, second, 300) == "SUCCESS"
    assert set(celery_hosts(instance, first)) == {
        "mds_index",
        "mds_index_index_consistency",
        "mds_index_samples_decode",
    }
    (start_1, end_1), (start_2, end_2) = (
        step_interval(instance, first, "mds_index"),
        step_interval(instance, second, "mds_index"),
    )
    print(f"mds_index steps: {start_1:.2f}-{end_1:.2f} and {start_2:.2f}-{end_2:.2f}")
    waited = [
        run for run in (first, second) if any("for the lock" in entry.user_message for entry in instance.all_logs(run))
    ]
    assert end_1 <= start_2 or end_2 <= start_1 or waited, (
        "two mds_index steps overlapped and neither waited for the lock"
    )
    for check in ("index_consistency", "samples_decode"):
        (latest, *_) = check_executions(server, "mds_index", check)
        assert latest["status"] == "SUCCEEDED", (check, latest)
    (latest, *_) = check_executions(server, "mds_shards", "shard_size", "ui-1")
    assert latest["status"] == "SUCCEEDED" and latest["evaluation"]["success"]
    assert (cluster.root / "out" / "index.mds").exists()

    # the daemon's sensor requested runs for the batches (one partition, or a range): on the workers too
    def sensor_run(partition):
        runs = instance.get_runs(RunsFilter(job_name="build_partition"))
        return [
            run
            for run in runs
            if "dagster/sensor_name" in run.tags and run.status == DagsterRunStatus.SUCCESS and covers(run, partition)
        ]

    (run, *_) = wait_until(lambda: sensor_run("ui-2"), 120, "a sensor run of ui-2", interval=1)
    assert set(celery_hosts(instance, run.run_id)) == PARTITION_STEPS


def covers(run, partition: str) -> bool:
    """The run built `partition`: its one partition, or a range (registered in name order here) holding it."""
    if "dagster/partition" in run.tags:
        return run.tags["dagster/partition"] == partition
    start, end = run.tags["dagster/asset_partition_range_start"], run.tags["dagster/asset_partition_range_end"]
    return start <= partition <= end


FAKE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: fake, user: {token: not-a-real-token}}]
contexts: [{name: fake, context: {cluster: fake, user: fake, namespace: dagster}}]
current-context: fake
"""
K8S_CHECK = """\
import json, sys
import yaml
from dagster import DagsterInstance, validate_run_config
from dagster_k8s import K8sRunLauncher
from mds_assets import definitions

instance = DagsterInstance.get()
launcher = instance.run_launcher
assert isinstance(launcher, K8sRunLauncher), type(launcher)
run_config = yaml.safe_load(open(sys.argv[1]))
for job in (definitions.build_partition(), definitions.publish_index()):
    validate_run_config(job, run_config)
print(json.dumps({"executor": definitions.build_partition().executor_def.name,
                  "namespace": launcher.job_namespace, "env_secrets": list(launcher.env_secrets),
                  "storage": type(instance.run_storage).__name__,
                  "pool_limit": instance.get_concurrency_config().pool_config.default_pool_limit}))
"""


def test_the_kubernetes_configuration_loads_and_validates(postgres, tmp_path):
    """No cluster here: the instance configuration of deploy/ is loaded against the loopback
    PostgreSQL (its host, port and database swapped for it) and a fake kubeconfig, and the
    example run config is validated against the jobs with MDS_EXECUTOR=k8s."""
    import yaml

    deploy = REPO / "deploy"
    values = yaml.safe_load((deploy / "helm-values.yaml").read_text())
    config = yaml.safe_load((deploy / "dagster.yaml").read_text())
    database = "k8s_check"
    postgres.create_database(database)
    for storage in ("run_storage", "event_log_storage", "schedule_storage"):
        config[storage]["config"]["postgres_db"].update(
            hostname="127.0.0.1", port=postgres.port, db_name=database, username="postgres"
        )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(FAKE_KUBECONFIG)
    config["run_launcher"]["config"].update(load_incluster_config=False, kubeconfig_file=str(kubeconfig))
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_PASSWORD": "trust-auth-ignores-it",
        "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "dagster-instance",
        "DAGSTER_K8S_PG_PASSWORD_SECRET": "dagster-postgresql-secret",
        "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP": "dagster-pipeline-env",
        "MDS_EXECUTOR": "k8s",
    }
    checked = subprocess.run(
        [sys.executable, "-c", K8S_CHECK, str(deploy / "run-config-k8s.yaml")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr[-3000:]
    facts = json.loads(checked.stdout.strip().splitlines()[-1])
    assert facts == {
        "executor": "k8s",
        "namespace": "dagster",
        "env_secrets": ["mds-aws"],
        "storage": "PostgresRunStorage",
        "pool_limit": 1,
    }

    # the chart values say the same as the instance configuration
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    assert "jobNamespace" not in launcher["config"]["k8sRunLauncher"]  # the install's -n: tests/test_deploy.py
    assert [s["name"] for s in launcher["config"]["k8sRunLauncher"]["envSecrets"]] == facts["env_secrets"]
    assert values["concurrency"]["pools"]["defaultLimit"] == config["concurrency"]["pools"]["default_limit"]
    assert values["concurrency"]["runs"]["maxConcurrentRuns"] == config["concurrency"]["runs"]["max_concurrent_runs"]
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "mds_assets.definitions"]
    assert {"name": "MDS_EXECUTOR", "value": "k8s"} in deployment["env"]
    assert [s["name"] for s in deployment["envSecrets"]] == ["mds-aws"]
    rendered = yaml.safe_load((deploy / "dagster.yaml").read_text())["run_storage"]["config"]["postgres_db"]
    assert (rendered["hostname"], rendered["port"], rendered["db_name"]) == (
        values["postgresql"]["postgresqlHost"],
        values["postgresql"]["service"]["port"],
        values["postgresql"]["postgresqlDatabase"],
    )
