"""Every Dagster call this code location makes outside Dagster's documented, public surface.

Written against dagster 1.13.27, the version pyproject.toml pins. Each function says what it
relies on, and tests/mds_assets/test_dagster_internals.py has a test per function, so an
upgrade that changes any of them fails there, in one place, not somewhere in a sensor.
The other modules on private API are `compute_logs.py` and `kept_connection_storage.py`: a
compute log manager and a storage are classes Dagster loads by name from the instance's
configuration, so they must subclass Dagster's own.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetRecordsFilter,
    DagsterEvent,
    DagsterInstance,
    JobExecutionResult,
)

# Not exported by `dagster`: the type of AssetCheckEvaluation's public `target_materialization_data`.
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluationTargetMaterializationData
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.execution.api import _check_execute_job_args, _job_with_repository_load_data, execute_run

# Not exported by `dagster`: how an instance is opened with its configuration overridden.
from dagster._core.instance.ref import InstanceRef
from dagster._serdes import ConfigurableClassData

# A dagster.yaml may name the kept-connection storages in this module: they load from here too.
from .kept_connection_storage import KeptConnectionSqliteEventLogStorage as KeptConnectionSqliteEventLogStorage
from .kept_connection_storage import KeptConnectionSqliteRunStorage as KeptConnectionSqliteRunStorage

PINNED_DAGSTER_VERSION = "1.13.27"

# `AssetCheckExecutionRecordStatus`'s values; the enum is not exported by `dagster`.
CHECK_FAILED = "FAILED"
CHECK_PLANNED = "PLANNED"


def check_execution_history(
    instance: DagsterInstance, check_key: AssetCheckKey, limit: int, before: int | None = None
) -> Sequence[Any]:
    """Executions of one asset check, newest first, `limit` of them numbered below `before`.

    Relies on `instance.event_log_storage.get_asset_check_execution_history` (the instance
    offers only the latest record) and on its records' `id`, `status.value` (`CHECK_FAILED`,
    `CHECK_PLANNED`, ...), `run_id` and `partition`."""
    return instance.event_log_storage.get_asset_check_execution_history(check_key, limit=limit, cursor=before)


def instance_with_overrides(dagster_home: str, overrides: dict[str, Any]) -> DagsterInstance:
    """The instance at `dagster_home`, with parts of its `dagster.yaml` replaced by `overrides`.

    Relies on `InstanceRef.from_dir(dagster_home, overrides=...)`, which merges `overrides`
    over the file's configuration, and on `DagsterInstance.from_ref`."""
    return DagsterInstance.from_ref(InstanceRef.from_dir(dagster_home, overrides=overrides))


def configured_compute_logs(dagster_home: str) -> ConfigurableClassData:
    """The compute log manager the `dagster.yaml` at `dagster_home` configures, without opening
    the instance. Relies on `InstanceRef.from_dir(...).compute_logs_data`."""
    return InstanceRef.from_dir(dagster_home).compute_logs_data


def uses_sqlite_storage(instance: DagsterInstance) -> bool:
    """True when the instance's run storage is SQLite (one machine only).

    Relies on the class of `instance.run_storage` having "sqlite" in its module or name
    (`dagster._core.storage.runs.sqlite.SqliteRunStorage`): there is no public way to ask."""
    storage = type(instance.run_storage)
    return "sqlite" in f"{storage.__module__}.{storage.__name__}".lower()


# What a step raises when its process is interrupted (Dagster turns SIGINT and SIGTERM into the first).
INTERRUPTIONS = frozenset({"DagsterExecutionInterruptedError", "KeyboardInterrupt"})


def user_error_message(error: Any) -> str:
    """The message of the user's own exception inside a step's or run's error info.

    Relies on `SerializableErrorInfo`'s `cls_name`, `cause` and `message`: Dagster wraps a user's
    error in exceptions of its own (class names with "Dagster" in them), whose `cause` chain
    leads to it, and prefixes a message with the exception's class path."""
    while error.cause is not None and "dagster" in error.cls_name.lower():
        error = error.cause
    if error.cls_name in INTERRUPTIONS:  # their message is only their class path
        return "interrupted (Ctrl-C, SIGTERM or the run terminated) before it finished"
    return re.sub(r"^[\w.]+: ", "", error.message.strip())


def failure_metadata(event: DagsterEvent, key: str) -> Any:
    """The value of metadata entry `key` of the `Failure` a failed step raised, or None.

    Relies on a step failure event's `step_failure_data.user_failure_data.metadata`."""
    if not event.is_step_failure or not event.step_failure_data.user_failure_data:
        return None
    entry = event.step_failure_data.user_failure_data.metadata.get(key)
    return None if entry is None else entry.value


def on_latest_materialization(evaluation: AssetCheckEvaluation, instance: DagsterInstance) -> AssetCheckEvaluation:
    """The evaluation pointed at the latest materialization of its partition, as Dagster does for
    an `AssetCheckResult` of a one-partition step. Dagster judges a partition's check current only
    when its latest evaluation targets the partition's latest materialization: without the target,
    the UI shows every partition of a passing check as missing (and Lineage "0 / 1 Passed").

    Relies on `AssetCheckEvaluationTargetMaterializationData` (not exported by `dagster`) and on
    the UI's rule above, which no public API states."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=evaluation.asset_key, asset_partitions=[evaluation.partition])
        if evaluation.partition is not None
        else evaluation.asset_key,
        limit=1,
    ).records
    if not records:
        return evaluation
    target = AssetCheckEvaluationTargetMaterializationData(
        storage_id=records[0].storage_id, run_id=records[0].run_id, timestamp=records[0].timestamp
    )
    return AssetCheckEvaluation(
        asset_key=evaluation.asset_key,
        check_name=evaluation.check_name,
        passed=evaluation.passed,
        metadata=evaluation.metadata,
        target_materialization_data=target,
        severity=evaluation.severity,
        description=evaluation.description,
        blocking=evaluation.blocking,
        partition=evaluation.partition,
    )


def execute_job_naming_its_run(
    job: ReconstructableJob,
    instance: DagsterInstance,
    run_config: Mapping[str, Any],
    tags: Mapping[str, str],
    on_run_created: Callable[[str], None],
) -> JobExecutionResult:
    """`dagster.execute_job(job, instance, run_config, tags)`, calling `on_run_created(run_id)` once
    its run is in the instance, before it executes: a caller whose instance's database fails during
    the run still knows which run it left unfinished there (`execute_job` raises without saying).

    Relies on `dagster._core.execution.api`: `execute_job`'s own steps for a new run
    (`_job_with_repository_load_data`, `_check_execute_job_args`, `instance.create_run_for_job`,
    then `execute_run`), as `_logged_execute_job` takes them."""
    job_arg, repository_load_data = _job_with_repository_load_data(job)
    job_arg, checked_config, all_tags, resolved_op_selection, _ = _check_execute_job_args(job_arg, run_config, tags)
    run = instance.create_run_for_job(
        job_def=job_arg.get_definition(),
        run_config=checked_config,
        resolved_op_selection=resolved_op_selection,
        tags=all_tags,
        job_code_origin=job_arg.get_python_origin() if isinstance(job_arg, ReconstructableJob) else None,
        repository_load_data=repository_load_data,
    )
    on_run_created(run.run_id)
    return execute_run(job_arg, run, instance, raise_on_error=False)


def celery_execution_loop(
    plan_context: Any, execution_plan: Any, submitted: Callable[[Any], Any]
) -> Iterator[DagsterEvent]:
    """dagster-celery's execution loop, every task it submits passed through `submitted` (which
    returns what the loop keeps in place of the task's `AsyncResult`).

    Relies on dagster-celery 0.29.27's `core_celery_execution_loop(plan_context, execution_plan,
    step_execution_fn)` and its private `_submit_task(app, plan_context, step, queue, priority,
    known_state)`, which returns the task's `AsyncResult`; and on the loop calling nothing but
    `ready()`, `get()` and `revoke()` on what `step_execution_fn` returns."""
    from dagster_celery.core_execution_loop import core_celery_execution_loop
    from dagster_celery.executor import _submit_task

    def submit(*args: Any) -> Any:
        return submitted(_submit_task(*args))  # type: ignore[no-untyped-call]

    return core_celery_execution_loop(plan_context, execution_plan, step_execution_fn=submit)  # type: ignore[no-untyped-call]


DAGSTER_MIGRATION_SCRIPTS = "dagster:_core/storage/alembic"  # the script_location of Dagster's alembic config


def read_dagster_migration_scripts_once() -> None:
    """Make every process read Dagster's migration scripts once, not at each SQLite database it opens.

    Dagster checks the schema of each SQLite database of an instance when it opens it (the runs,
    schedules and index databases at instance start, and the new database of each run), and
    stamps each new one: every check and stamp asks alembic for a fresh `ScriptDirectory`, which
    loads all ~90 migration scripts of Dagster again to find the head revision (~35 ms of CPU
    each, 21 times in `mds-assets build` of two partition runs and a publish). The scripts
    are those of the installed Dagster, so one `ScriptDirectory` per process serves every check;
    it is built at the first one, and workers forked after it inherit it.

    Relies on Dagster's storage calling `alembic.script.ScriptDirectory.from_config` with a
    config whose `script_location` is `DAGSTER_MIGRATION_SCRIPTS` (`dagster._core.storage.sql.
    get_alembic_config`), directly and through alembic's `command.stamp`. Other script
    locations are left to alembic."""
    from alembic.script import ScriptDirectory

    if getattr(ScriptDirectory.from_config, "reads_dagster_scripts_once", False):
        return
    build = ScriptDirectory.from_config.__func__  # type: ignore[attr-defined]
    built: dict[str, ScriptDirectory] = {}
    lock = threading.Lock()

    def from_config(cls: type[ScriptDirectory], config: Any) -> ScriptDirectory:
        location = config.get_main_option("script_location")
        if cls is not ScriptDirectory or location != DAGSTER_MIGRATION_SCRIPTS:
            return build(cls, config)
        with lock:
            if location not in built:
                built[location] = build(cls, config)
            return built[location]

    from_config.reads_dagster_scripts_once = True  # type: ignore[attr-defined]
    ScriptDirectory.from_config = classmethod(from_config)  # type: ignore[method-assign, assignment]
