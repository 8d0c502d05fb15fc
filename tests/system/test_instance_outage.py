"""The Dagster instance's PostgreSQL down for longer than Dagster's retries, in the middle of
`mds-assets build`: the build ends with its usual last line (what --out holds, read back), and
the runs it left STARTED are marked failed once the database is back."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from ..commands import MDS_ASSETS, build_arguments
from ..mds_assets.conftest import record, write_batch
from .cluster import Postgres, instance_yaml, wait_until

pytestmark = pytest.mark.system

FIELDS = "uid,text,n:int64"


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    server = Postgres()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_a_database_outage_mid_build_ends_with_the_summary_and_its_runs_are_failed_later(
    postgres: Postgres, tmp_path: Path
) -> None:
    raw, out, home = tmp_path / "raw", tmp_path / "out", tmp_path / "home"
    for batch in range(4):
        write_batch(raw, f"b{batch}.jsonl", [dict(record(batch, n), text="x" * 300) for n in range(40_000)])
    home.mkdir()
    (home / "dagster.yaml").write_text(instance_yaml(postgres.create_database("dagster")))
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_DISABLE_TELEMETRY": "1"}
    command = [*MDS_ASSETS, *build_arguments(raw, out, FIELDS), "--workers", "1", "--quiet"]
    build = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (out / "partitions" / ".staging").exists(), 120, "the build writing a partition")
        postgres.stop_server()
        stdout, stderr = build.communicate(timeout=300)
    finally:
        if build.poll() is None:
            build.kill()
            build.wait(timeout=10)
    print(stderr[-3000:])
    assert build.returncode == 1
    assert "Traceback" not in stderr and "DagsterPostgresException" not in stderr.splitlines()[-1], stderr
    assert "the Dagster instance" in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("not published: ") and str(out) in last, last

    postgres.start_server()
    time.sleep(1)
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    instance = DagsterInstance.from_config(str(home))
    try:
        left = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING]))
        assert not left, [(run.run_id, run.status) for run in left]
        failed = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.FAILURE]))
        assert failed, "the run the outage interrupted was not marked failed"
    finally:
        instance.dispose()
