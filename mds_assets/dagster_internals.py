"""Every Dagster call this code location makes outside Dagster's documented, public surface.

Written against dagster 1.13.27, the version pyproject.toml pins. Each function says what it
relies on, and tests/mds_assets/test_dagster_internals.py has a test per function, so an
upgrade that changes any of them fails there, in one place, not somewhere in a sensor.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from dagster import AssetCheckEvaluation, AssetCheckKey, AssetRecordsFilter, DagsterEvent, DagsterInstance

# Not exported by `dagster`: the type of AssetCheckEvaluation's public `target_materialization_data`.
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluationTargetMaterializationData

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


def uses_sqlite_storage(instance: DagsterInstance) -> bool:
    """True when the instance's run storage is SQLite (one machine only).

    Relies on the class of `instance.run_storage` having "sqlite" in its module or name
    (`dagster._core.storage.runs.sqlite.SqliteRunStorage`): there is no public way to ask."""
    storage = type(instance.run_storage)
    return "sqlite" in f"{storage.__module__}.{storage.__name__}".lower()


def user_error_message(error: Any) -> str:
    """The message of the user's own exception inside a step's or run's error info.

    Relies on `SerializableErrorInfo`'s `cls_name`, `cause` and `message`: Dagster wraps a user's
    error in exceptions of its own (class names with "Dagster" in them), whose `cause` chain
    leads to it, and prefixes a message with the exception's class path."""
    while error.cause is not None and "dagster" in error.cls_name.lower():
        error = error.cause
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
