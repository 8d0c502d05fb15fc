"""One test per call of `mds_assets.dagster_internals`: an upgrade of Dagster that changes any
of them fails here, naming the call, before it fails somewhere in a sensor or a build."""

import inspect
import re
import sys
from importlib import metadata

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    DagsterInstance,
    DagsterRunStatus,
    Failure,
    MetadataValue,
    asset,
    asset_check,
    job,
    materialize,
    op,
    reconstructable,
)
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._utils.error import serializable_error_info_from_exc_info

from mds_assets.dagster_internals import (
    CHECK_FAILED,
    DAGSTER_MIGRATION_SCRIPTS,
    PINNED_DAGSTER_VERSION,
    celery_execution_loop,
    check_execution_history,
    configured_compute_logs,
    execute_job_naming_its_run,
    failure_metadata,
    instance_with_overrides,
    on_latest_materialization,
    read_dagster_migration_scripts_once,
    user_error_message,
    uses_sqlite_storage,
)


def test_the_installed_dagster_is_the_pinned_one():
    assert metadata.version("dagster") == PINNED_DAGSTER_VERSION


@asset
def checked() -> None:
    return None


@asset_check(asset=checked)
def always_fails() -> AssetCheckResult:
    return AssetCheckResult(passed=False, severity=AssetCheckSeverity.WARN)


def test_check_execution_history_lists_each_execution_newest_first(instance):
    runs = [materialize([checked, always_fails], instance=instance).run_id for _ in range(3)]
    key = AssetCheckKey(checked.key, "always_fails")
    records = check_execution_history(instance, key, limit=10)
    assert [record.run_id for record in records] == runs[::-1]
    assert {record.status.value for record in records} == {CHECK_FAILED}
    assert [r.run_id for r in check_execution_history(instance, key, limit=10, before=records[0].id)] == runs[1::-1]
    assert all(record.partition is None for record in records)


def test_uses_sqlite_storage_tells_a_sqlite_instance_from_another(tmp_path):
    with DagsterInstance.local_temp(str(tmp_path)) as local:
        assert uses_sqlite_storage(local)
    with DagsterInstance.ephemeral() as in_memory:
        assert not uses_sqlite_storage(in_memory)


@op
def raises_a_user_error() -> None:
    raise ValueError("batch b, line 3: not valid JSON")


@op
def raises_a_failure() -> None:
    raise Failure(description="2 partitions failed", metadata={"failed_partitions": MetadataValue.json({"a": "x"})})


@job
def user_error_job() -> None:
    raises_a_user_error()


@job
def failure_job() -> None:
    raises_a_failure()


def _step_failure(result):
    return next(event for event in result.all_events if event.is_step_failure)


def test_instance_with_overrides_replaces_only_what_it_is_given(tmp_path):
    (tmp_path / "dagster.yaml").write_text("run_retries:\n  enabled: true\n")
    overrides = {"telemetry": {"enabled": False}}
    with instance_with_overrides(str(tmp_path), overrides) as instance:
        assert instance.root_directory == str(tmp_path)
        assert not instance.telemetry_enabled
        assert instance.run_retries_enabled


def test_configured_compute_logs_names_the_manager_the_yaml_configures(tmp_path):
    assert configured_compute_logs(str(tmp_path)).class_name == "LocalComputeLogManager"
    (tmp_path / "dagster.yaml").write_text(
        "compute_logs:\n  module: dagster.core.storage.noop_compute_log_manager\n  class: NoOpComputeLogManager\n"
    )
    assert configured_compute_logs(str(tmp_path)).class_name == "NoOpComputeLogManager"


def test_user_error_message_unwraps_dagsters_wrappers_to_the_users_message():
    result = user_error_job.execute_in_process(raise_on_error=False)
    error = _step_failure(result).step_failure_data.error
    assert user_error_message(error) == "batch b, line 3: not valid JSON"


def test_failure_metadata_reads_the_metadata_of_a_raised_failure():
    result = failure_job.execute_in_process(raise_on_error=False)
    assert failure_metadata(_step_failure(result), "failed_partitions") == {"a": "x"}
    assert failure_metadata(_step_failure(result), "absent") is None
    success = next(event for event in failure_job.execute_in_process(raise_on_error=False).all_events)
    assert failure_metadata(success, "failed_partitions") is None


def test_on_latest_materialization_targets_the_latest_materialization_of_the_checked_asset(instance):
    evaluation = AssetCheckEvaluation(asset_key=checked.key, check_name="always_fails", passed=True)
    assert on_latest_materialization(evaluation, instance).target_materialization_data is None  # none yet
    materialize([checked], instance=instance)
    latest = materialize([checked], instance=instance)
    targeted = on_latest_materialization(evaluation, instance)
    assert targeted.target_materialization_data.run_id == latest.run_id
    record = instance.fetch_materializations(checked.key, limit=1).records[0]
    assert targeted.target_materialization_data.storage_id == record.storage_id
    assert (targeted.passed, targeted.check_name, targeted.asset_key) == (True, "always_fails", checked.key)


@op
def one_step() -> None:
    return None


@job
def one_step_job() -> None:
    one_step()


def test_execute_job_naming_its_run_names_the_run_before_it_executes(instance):
    named: list[str] = []

    def on_run_created(run_id: str) -> None:
        run = instance.get_run_by_id(run_id)
        named.append(run_id)
        assert run is not None and run.status == DagsterRunStatus.NOT_STARTED and run.tags["who"] == "test"

    with execute_job_naming_its_run(
        reconstructable(one_step_job), instance, run_config={}, tags={"who": "test"}, on_run_created=on_run_created
    ) as result:
        assert result.success and named == [result.run_id]


def test_celery_execution_loop_hands_what_submitted_returns_to_a_loop_that_only_waits_gets_and_revokes():
    """No broker here: what celery_execution_loop relies on, read from dagster-celery itself (the
    system tests in tests/system/test_celery_run_end.py run it on real workers)."""
    from dagster_celery import core_execution_loop, executor

    assert metadata.version("dagster-celery") == "0.29.27"
    assert list(inspect.signature(core_execution_loop.core_celery_execution_loop).parameters) == [
        "job_context",
        "execution_plan",
        "step_execution_fn",
    ]
    assert list(inspect.signature(executor._submit_task).parameters) == [
        "app",
        "plan_context",
        "step",
        "queue",
        "priority",
        "known_state",
    ]
    loop = inspect.getsource(core_execution_loop.core_celery_execution_loop)
    assert "step_results[step.key] = step_execution_fn(" in loop
    assert set(re.findall(r"\bresult\.(\w+)\(", loop)) == {"ready", "get", "revoke"}
    assert inspect.isgenerator(celery_execution_loop(None, None, lambda result: result))


def test_dagsters_migration_scripts_are_read_once_and_every_new_database_still_checks_out(tmp_path):
    from alembic.script import ScriptDirectory
    from dagster._core.storage import sql

    read_dagster_migration_scripts_once()
    read_dagster_migration_scripts_once()  # a second call changes nothing
    config = sql.get_alembic_config(sql.__file__)
    assert config.get_main_option("script_location") == DAGSTER_MIGRATION_SCRIPTS
    scripts = ScriptDirectory.from_config(config)
    assert ScriptDirectory.from_config(sql.get_alembic_config(sql.__file__)) is scripts
    with DagsterInstance.local_temp(str(tmp_path)) as local:  # its databases created, checked and stamped
        run_id = materialize([checked], instance=local).run_id  # and a run's own database
        assert local.get_run_by_id(run_id).is_success
    other = tmp_path / "other-scripts"
    other.mkdir()
    (other / "env.py").write_text("")
    (other / "versions").mkdir()
    config.set_main_option("script_location", str(other))
    assert ScriptDirectory.from_config(config) is not ScriptDirectory.from_config(config)  # others left to alembic


def test_user_error_message_of_an_interrupted_step_says_it_was_interrupted():
    try:
        raise DagsterExecutionInterruptedError()
    except DagsterExecutionInterruptedError:
        error = serializable_error_info_from_exc_info(sys.exc_info())
    assert user_error_message(error) == "interrupted (Ctrl-C, SIGTERM or the run terminated) before it finished"
