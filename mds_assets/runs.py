"""Runs of the code location's own jobs, from any process, on whatever executor MDS_EXECUTOR names.

`mds-assets build` starts its runs here: the named jobs of `mds_assets.definitions`, loaded
through `reconstructable` (so a Celery worker or a Kubernetes Job can load the same job by
module and name), with every setting in the run config (which Dagster stores and every step
process reads) rather than in Python objects that exist only in this process.
"""

from __future__ import annotations

import re
from typing import Any

from dagster import DagsterInstance, JobExecutionResult, execute_job, reconstructable

from .assets.batch_pipeline import listing_config
from .core.grouping import RawGroup
from .execution import check_instance, executor_name
from .partitions import partition_range_tags
from .resources import MDSSettings

QUIET_LOGS = {"console": {"config": {"log_level": "CRITICAL"}}}  # failures are summarised; the UI has the logs


def _target(name: str):
    """The module-scope function `reconstructable` needs; the code location is imported only
    here, so a bad MDS_EXECUTOR is reported as an error of the run, not of `import`."""
    executor_name()  # raises ExecutorSettingError (a ValueError) naming the bad value
    from . import definitions

    return {"build_partition": definitions.build_partition, "publish_index": definitions.publish_index}[name]


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
    config = run_config(settings, batches)
    with execute_job(
        reconstructable(target), instance=instance, run_config=config, tags=all_tags, raise_on_error=False
    ) as result:
        return result


def first_error(result: JobExecutionResult) -> str:
    """The user's error of the first failed step; else the run's own failure (a step process
    killed, a worker lost: no step failure was recorded)."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error:
            return _message(event.step_failure_data.error)
    for event in result.all_events:
        if event.is_job_failure and event.job_failure_data and event.job_failure_data.error:
            return _message(event.job_failure_data.error)
    return "the run failed (see the Dagster UI for its logs)"


def _message(error) -> str:
    while error.cause is not None and "dagster" in error.cls_name.lower():
        error = error.cause  # unwrap Dagster's wrappers down to the user's error
    return re.sub(r"^[\w.]+: ", "", error.message.strip())  # drop the exception's class path
