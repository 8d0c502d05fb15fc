"""Every Dagster call this code location makes outside Dagster's documented, public surface.

Written against dagster 1.13.27, the version pyproject.toml pins. Each function says what it
relies on, and tests/mds_assets/test_dagster_internals.py has a test per function, so an
upgrade that changes any of them fails there, in one place, not somewhere in a sensor.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
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
