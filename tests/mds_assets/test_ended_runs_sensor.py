"""Runs `mds-assets build` left unfinished: `ended_runs_sensor` marks failed those whose build
process on this host is gone, and the build itself, once its instance answers, its own."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, SkipReason, build_sensor_context

from mds_assets.instance_return import SENSOR_NAME, settle_after_instance_failure
from mds_assets.runs import ORCHESTRATOR_TAG, InstanceLost
from mds_assets.sensors import ended_runs_sensor


def _ended_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait(timeout=10)
    return process.pid


def _started_run(instance: DagsterInstance, owner: str | None) -> str:
    tags = {ORCHESTRATOR_TAG: owner} if owner else {}
    run = DagsterRun(job_name="build_partition", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED, tags=tags)
    return instance.add_run(run).run_id


def _status(instance: DagsterInstance, run_id: str) -> DagsterRunStatus:
    run = instance.get_run_by_id(run_id)
    assert run is not None
    return run.status


def test_the_sensor_fails_only_the_runs_whose_build_process_on_this_host_is_gone(instance):
    host = socket.gethostname()
    ended = _started_run(instance, f"{host}:{_ended_pid()}")
    alive = _started_run(instance, f"{host}:{os.getpid()}")
    elsewhere = _started_run(instance, f"another-{host}:{_ended_pid()}")
    from_the_daemon = _started_run(instance, None)

    result = ended_runs_sensor(build_sensor_context(instance=instance))

    assert isinstance(result, SkipReason) and ended in (result.skip_message or ""), result
    assert _status(instance, ended) == DagsterRunStatus.FAILURE
    for run_id in (alive, elsewhere, from_the_daemon):
        assert _status(instance, run_id) == DagsterRunStatus.STARTED
    again = ended_runs_sensor(build_sensor_context(instance=instance))
    assert isinstance(again, SkipReason) and "no run" in (again.skip_message or ""), again


def test_the_sensor_is_in_the_code_location_under_the_name_the_build_gives():
    from mds_assets.definitions import defs

    assert SENSOR_NAME in {sensor.name for sensor in defs.sensors}


def test_a_build_whose_instance_answers_fails_the_runs_it_left_and_says_which(instance):
    left = _started_run(instance, f"{socket.gethostname()}:{os.getpid()}")
    said: list[str] = []

    account = settle_after_instance_failure(instance, InstanceLost("too many retries", (left,)), said.append, 30)

    assert _status(instance, left) == DagsterRunStatus.FAILURE
    assert account.endswith(f"were marked failed: {left}"), account
    assert len(said) == 1 and "waiting up to 30 s (MDS_INSTANCE_RETURN_SECONDS)" in said[0] and left in said[0]


def test_a_build_that_does_not_wait_names_the_runs_it_leaves_and_what_fails_them(instance):
    left = _started_run(instance, f"{socket.gethostname()}:{os.getpid()}")
    said: list[str] = []

    account = settle_after_instance_failure(instance, InstanceLost("too many retries", (left,)), said.append, 0)

    assert not said
    assert _status(instance, left) == DagsterRunStatus.STARTED
    assert f"stay STARTED there (runs: {left})" in account and SENSOR_NAME in account, account
    assert "MDS_INSTANCE_RETURN_SECONDS=0" in account


def test_a_build_that_left_no_run_unfinished_does_not_wait(instance):
    said: list[str] = []

    account = settle_after_instance_failure(instance, InstanceLost("too many retries"), said.append, 30)

    assert not said and account.endswith("no run of this build was left unfinished"), account
