"""One test per call of `mds_assets.dagster_internals`: an upgrade of Dagster that changes any
of them fails here, naming the call, before it fails somewhere in a sensor or a build."""

import logging
import multiprocessing
import queue
import sqlite3
import time
import uuid
from importlib import metadata

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    DagsterInstance,
    EventLogEntry,
    Failure,
    MetadataValue,
    asset,
    asset_check,
    job,
    materialize,
    op,
)

from mds_assets.dagster_internals import (
    CHECK_FAILED,
    PINNED_DAGSTER_VERSION,
    KeptConnectionSqliteEventLogStorage,
    check_execution_history,
    failure_metadata,
    on_latest_materialization,
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


def _log_line(run_id: str, message: str) -> EventLogEntry:
    return EventLogEntry(
        user_message=message,
        level=logging.INFO,
        job_name="a_job",
        run_id=run_id,
        error_info=None,
        timestamp=time.time(),
    )


def _messages(storage: KeptConnectionSqliteEventLogStorage, run_id: str) -> list[str]:
    return [record.event_log_entry.user_message for record in storage.get_records_for_run(run_id).records]


def test_the_kept_connection_event_log_wakes_the_uis_watcher_of_a_running_run(tmp_path):
    """The UI follows a running run's log by watching its `<run_id>.db` file (Dagster's watchdog)."""
    storage = KeptConnectionSqliteEventLogStorage(str(tmp_path))
    run_id = str(uuid.uuid4())
    storage.store_event(_log_line(run_id, "before watching"))  # the run's database open, kept
    seen: queue.Queue[str] = queue.Queue()

    def watcher(entry, _cursor):
        seen.put(entry.user_message)

    storage.watch(run_id, None, watcher)
    try:
        storage.store_event(_log_line(run_id, "while watched"))
        messages = [seen.get(timeout=30)]
        while messages[-1] != "while watched":
            messages.append(seen.get(timeout=30))
    finally:
        storage.end_watch(run_id, watcher)
        storage.dispose()
    assert messages[-1] == "while watched", messages


def _store_in_child(storage: KeptConnectionSqliteEventLogStorage, run_id: str, opened) -> None:
    real_connect = sqlite3.dbapi2.connect

    def counting_connect(*args, **kwargs):
        opened.value += 1
        return real_connect(*args, **kwargs)

    sqlite3.dbapi2.connect = counting_connect
    storage.store_event(_log_line(run_id, "child"))


def test_a_forked_child_writes_through_connections_of_its_own(tmp_path):
    """SQLite forbids using a connection across fork(): `mds-assets build` forks its workers."""
    storage = KeptConnectionSqliteEventLogStorage(str(tmp_path))
    run_id = str(uuid.uuid4())
    storage.store_event(_log_line(run_id, "parent, before"))  # the run's database open, kept
    context = multiprocessing.get_context("fork")
    opened = context.Value("i", 0)
    child = context.Process(target=_store_in_child, args=(storage, run_id, opened))
    child.start()
    child.join(timeout=60)
    storage.store_event(_log_line(run_id, "parent, after"))
    try:
        assert child.exitcode == 0
        assert opened.value == 1  # the run's database, opened again by the child
        assert _messages(storage, run_id) == ["parent, before", "child", "parent, after"]
    finally:
        storage.dispose()
