"""Runs of the code location's own jobs, from any process, on whatever executor MDS_EXECUTOR names.

`mds-assets build` starts its runs here: the named jobs of `mds_assets.definitions`, loaded
through `reconstructable` (so a Celery worker or a Kubernetes Job can load the same job by
module and name), with every setting in the run config (which Dagster stores and every step
process reads) rather than in Python objects that exist only in this process.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from dagster import (
    DagsterEvent,
    DagsterInstance,
    DagsterRunStatus,
    JobDefinition,
    JobExecutionResult,
    RunsFilter,
    reconstructable,
)

from .assets.batch_pipeline import listing_config
from .core.grouping import RawGroup
from .dagster_internals import execute_job_naming_its_run, user_error_message
from .execution import check_instance, executor_name
from .partitions import partition_range_tags
from .resources import MDSSettings

ORCHESTRATOR_TAG = "mds/orchestrator"  # "host:pid" of the process that orchestrates a run started here
INSTANCE_FAILURE_MODULES = ("dagster_postgres", "dagster_mysql", "sqlalchemy", "psycopg2", "pymysql", "sqlite3")
UNFINISHED = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
QUIET_LOGS = {"console": {"config": {"log_level": "CRITICAL"}}}  # failures are summarised; the UI has the logs


def _target(name: str) -> Callable[[], JobDefinition]:
    """The module-scope function `reconstructable` needs; the code location is imported only
    here, so a bad MDS_EXECUTOR is reported as an error of the run, not of `import`."""
    executor_name()  # raises ExecutorSettingError (a ValueError) naming the bad value
    from . import definitions

    return {"build_partition": definitions.build_partition, "publish_index": definitions.publish_index}[name]


def preload_code_location() -> None:
    """Import the code location in a process about to fork build workers, so that each worker
    starts with it loaded instead of importing it on its own (and this process's publish run finds
    it loaded). A bad setting is left to the runs, which import it again and report it as theirs."""
    try:
        _target("build_partition")
    except Exception:  # reported by each run that needs the code location
        pass


def run_config(settings: MDSSettings, batches: list[RawGroup] | None = None) -> dict[str, Any]:
    """The settings as run config (no step hands data to another: every step reads and writes
    the dataset's own storage), and the batches as listed already (so the run does not list
    the raw URL again)."""
    return {
        **({"ops": listing_config(batches)} if batches else {}),
        "resources": {"mds_settings": {"config": settings.model_dump()}},
        "loggers": QUIET_LOGS,
    }


def run_job(
    name: str,
    settings: MDSSettings,
    instance: DagsterInstance,
    partitions: tuple[str, str] | None = None,
    tags: dict[str, str] | None = None,
    batches: list[RawGroup] | None = None,
) -> JobExecutionResult:
    """One run of the named job, orchestrated in this process, its steps where the executor sends
    them; `partitions` is (first, last) of a range of partition keys (one partition: first == last)."""
    target = _target(name)
    check_instance(instance)
    all_tags = dict(tags or {}) | (partition_range_tags(*partitions) if partitions else {})
    all_tags[ORCHESTRATOR_TAG] = f"{socket.gethostname()}:{os.getpid()}"
    config = run_config(settings, batches)
    created: list[str] = []
    try:
        with execute_job_naming_its_run(
            reconstructable(target), instance, run_config=config, tags=all_tags, on_run_created=created.append
        ) as result:
            return result
    except Exception as error:
        if created and is_instance_failure(error):
            raise InstanceLost(last_line(error), tuple(created)) from error
        raise


class InstanceLost(Exception):
    """The Dagster instance's database failed past Dagster's retries while runs were going on:
    `run_ids` are the runs left unfinished in it (their ends could not be recorded). It crosses
    process boundaries (a build worker's run), so it holds text and ids only."""

    def __init__(self, message: str, run_ids: tuple[str, ...] = ()) -> None:
        super().__init__(message, run_ids)
        self.message = message
        self.run_ids = run_ids

    def __str__(self) -> str:
        return self.message


def last_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[-1]


def fail_runs_of_ended_processes(instance: DagsterInstance) -> list[str]:
    """Mark failed the runs started here (`run_job`) that are still unfinished although the process
    orchestrating them, on this host, is gone: a database outage longer than Dagster's retries
    (or a kill -9) ended that process before it could record the run's end. Runs of other hosts,
    and runs the daemon launched (its run monitoring watches those), are left alone."""
    ended = []
    for run in instance.get_runs(RunsFilter(statuses=UNFINISHED)):
        owner = run.tags.get(ORCHESTRATOR_TAG)
        if owner is None or not _ended_here(owner):
            continue
        instance.report_run_failed(
            run, message=f"the process that ran it ({owner}) ended before recording the run's end"
        )
        ended.append(run.run_id)
    return ended


def fail_unfinished_runs(instance: DagsterInstance, run_ids: Iterable[str], message: str) -> list[str]:
    """Mark failed, saying `message`, those of `run_ids` that the instance holds as unfinished."""
    failed = []
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.status in UNFINISHED:
            instance.report_run_failed(run, message=message)
            failed.append(run_id)
    return failed


def _ended_here(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def is_instance_failure(error: BaseException) -> bool:
    """True when `error`, or an error it was raised from, comes from the Dagster instance's
    database (its driver, SQLAlchemy, or Dagster's storage layer over it)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, InstanceLost) or type(current).__module__.split(".")[0] in INSTANCE_FAILURE_MODULES:
            return True
        current = current.__cause__ or current.__context__
    return False


def first_error(result: JobExecutionResult) -> str:
    """The user's error of the first failed step; else the run's own failure (a step process
    killed, a worker lost: no step failure was recorded)."""
    return first_error_of(result.all_events)


def first_error_of(events: Sequence[DagsterEvent]) -> str:
    """`first_error` of a run's events (a step failure's, else the run failure's)."""
    for event in events:
        if event.is_step_failure and event.step_failure_data.error:
            return user_error_message(event.step_failure_data.error)
    for event in events:
        if event.is_job_failure and event.job_failure_data and event.job_failure_data.error:
            return user_error_message(event.job_failure_data.error)
    return "the run failed (see the Dagster UI for its logs)"
