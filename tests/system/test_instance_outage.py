"""The Dagster instance's PostgreSQL down for longer than Dagster's retries, in the middle of
`mds-assets build`: the build ends with its usual last line (what --out holds, read back), and
the runs it left unfinished are marked failed once the database is back — by the build itself
when the database returns within MDS_INSTANCE_RETURN_SECONDS, else by `ended_runs_sensor`."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter, SkipReason, build_sensor_context

from mds_assets.runs import UNFINISHED
from mds_assets.sensors import ended_runs_sensor

from ..commands import MDS_ASSETS, build_arguments
from ..mds_assets.conftest import record, write_batch
from .cluster import Postgres, instance_yaml, wait_until

pytestmark = pytest.mark.system

FIELDS = "uid,text,n:int64"
RUN_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    server = Postgres()
    try:
        server.start()
        yield server
    finally:
        server.stop()


class Build:
    """`mds-assets build` of 4 batches (a partition each) on an instance in `postgres`, its stderr
    read line by line as it comes."""

    def __init__(self, postgres: Postgres, tmp_path: Path, return_seconds: int, workers: int) -> None:
        raw, self.out, self.home = tmp_path / "raw", tmp_path / "out", tmp_path / "home"
        for batch in range(4):
            write_batch(raw, f"b{batch}.jsonl", [dict(record(batch, n), text="x" * 300) for n in range(10_000)])
        self.home.mkdir()
        (self.home / "dagster.yaml").write_text(instance_yaml(postgres.create_database("dagster")))
        env = {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "DAGSTER_DISABLE_TELEMETRY": "1",
            "MDS_INSTANCE_RETURN_SECONDS": str(return_seconds),
        }
        arguments = [*build_arguments(raw, self.out, FIELDS), "--partition-bytes", "1MiB", "--workers", str(workers)]
        self.process = subprocess.Popen(
            [*MDS_ASSETS, *arguments, "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.process.stderr), daemon=True)
        self._reader.start()

    def stderr(self) -> str:
        return "".join(self.lines)

    def wait(self, timeout: float) -> int:
        self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        print(self.stderr()[-3000:])
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def instance(self) -> DagsterInstance:
        return DagsterInstance.from_config(str(self.home))


def _assert_ends_with_the_summary(build: Build) -> None:
    stderr = build.stderr()
    assert "Traceback" not in stderr and "DagsterPostgresException" not in stderr.splitlines()[-1], stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("not published: ") and str(build.out) in last, last


def _unfinished(instance: DagsterInstance) -> list[tuple[str, DagsterRunStatus]]:
    return [(run.run_id, run.status) for run in instance.get_runs(RunsFilter(statuses=UNFINISHED))]


def test_a_database_back_while_the_build_waits_has_the_build_fail_its_runs(postgres: Postgres, tmp_path: Path) -> None:
    build = Build(postgres, tmp_path, return_seconds=90, workers=2)
    try:
        wait_until(lambda: (build.out / "partitions" / ".staging").exists(), 60, "the build writing a partition")
        postgres.stop_server()
        wait_until(lambda: "waiting up to 90 s" in build.stderr(), 110, "the build waiting for the database")
        postgres.start_server()
        assert build.wait(timeout=60) == 1
    finally:
        build.kill()
    stderr = build.stderr()
    assert stderr.count("waiting up to 90 s (MDS_INSTANCE_RETURN_SECONDS)") == 1, stderr
    assert "Retrying failed database connection" not in stderr.split("waiting up to 90 s")[1], stderr
    _assert_ends_with_the_summary(build)
    said = re.search(r"the runs this build left unfinished were marked failed: (.*)$", stderr, re.MULTILINE)
    assert said, stderr
    marked = re.findall(RUN_ID, said.group(1))
    assert marked, said.group(0)
    instance = build.instance()
    try:
        assert not _unfinished(instance)
        for run_id in marked:
            run = instance.get_run_by_id(run_id)
            assert run is not None and run.status == DagsterRunStatus.FAILURE, (run_id, run and run.status)
    finally:
        instance.dispose()


def test_a_database_back_after_the_build_gave_up_has_the_sensor_fail_its_runs(
    postgres: Postgres, tmp_path: Path
) -> None:
    build = Build(postgres, tmp_path, return_seconds=2, workers=1)
    try:
        wait_until(lambda: (build.out / "partitions" / ".staging").exists(), 60, "the build writing a partition")
        postgres.stop_server()
        assert build.wait(timeout=120) == 1
    finally:
        build.kill()
    _assert_ends_with_the_summary(build)
    stderr = build.stderr()
    assert "the Dagster instance" in stderr and "did not answer within 2 s" in stderr, stderr
    said = re.search(r"stay STARTED there \(runs: (.*?)\).*ended_runs_sensor", stderr)
    assert said, stderr
    left = re.findall(RUN_ID, said.group(1))
    assert left, said.group(0)

    postgres.start_server()
    instance = build.instance()
    try:
        assert {run_id for run_id, _ in _unfinished(instance)} == set(left)
        result = ended_runs_sensor(build_sensor_context(instance=instance))
        assert isinstance(result, SkipReason) and all(run_id in result.skip_message for run_id in left), result
        assert not _unfinished(instance)
        for run_id in left:
            run = instance.get_run_by_id(run_id)
            assert run is not None and run.status == DagsterRunStatus.FAILURE, (run_id, run and run.status)
    finally:
        instance.dispose()
