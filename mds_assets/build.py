"""`mds-assets build`: everything the UI does, from the shell, recorded in the same Dagster instance.

Registers a partition per group of raw files (`core.grouping`), materialises the partitions
that are missing or whose files or settings changed — in parallel, one run per worker, each run
a range of partitions — then publishes the index and runs its checks. If any partition fails, nothing is published:
the dataset stays as it was.
"""

from __future__ import annotations

import ctypes
import functools
import json
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, JobExecutionResult
from tqdm.auto import tqdm

from writer.published import describe_change, read_state
from writer.secrets import redact
from writer.storage import Storage

from .checks import why_it_failed
from .compute_logs import without_tail
from .core.damage import clear_damage
from .core.grouping import RawGroup
from .core.layout import stored_partitions
from .core.orphans import repeated_partitions
from .core.ownership import check_output_may_be_written
from .core.partition_writer import remove_staging_root
from .core.stamps import current_partitions
from .core.work_split import contiguous_ranges
from .dagster_internals import (
    configured_compute_logs,
    failure_metadata,
    instance_with_overrides,
    read_dagster_migration_scripts_once,
    uses_sqlite_storage,
)
from .instance_binding import bind_instance
from .instance_return import settle_after_instance_failure
from .keys import MDS_INDEX
from .partitions import RAW_BATCHES
from .resources import MDSSettings
from .runs import (
    InstanceLost,
    fail_runs_of_ended_processes,
    first_error,
    is_instance_failure,
    last_line,
    preload_code_location,
    run_job,
)

DEFAULT_DAGSTER_HOME = ".dagster_home"
INSTANCE_CONFIG = """\
# Dagster's default local instance for mds-assets (SQLite under this folder).
# Runs launched from the UI, a sensor or a schedule wait in the daemon's queue until its next
# look (Dagster's default: every 5 s; a partition run itself takes about a second): every
# second instead costs the idle daemon under 1 % of a core (benchmarks/ui_launch.py).
run_queue:
  dequeue_interval_seconds: 1
# Dagster's anonymous usage statistics are off, and so is its notice about them (which would
# print in the middle of the progress bar). Set `enabled: true` to send them to Dagster Labs.
telemetry:
  enabled: false
# Dagster's SQLite storages, in the folders of its defaults, keeping their connections open:
# Dagster's own open and close a connection for every event and query, which costs a small
# partition more than building it (mds_assets/kept_connection_storage.py, docs/benchmarks.md).
run_storage:
  module: mds_assets.kept_connection_storage
  class: KeptConnectionSqliteRunStorage
  config:
    base_dir: {runs}
event_log_storage:
  module: mds_assets.kept_connection_storage
  class: KeptConnectionSqliteEventLogStorage
  config:
    base_dir: {event_logs}
"""


def instance_config(home: Path) -> str:
    """The dagster.yaml mds-assets writes into a new instance folder `home` (storages need its absolute path)."""
    history = home.resolve() / "history"
    return INSTANCE_CONFIG.format(runs=json.dumps(str(history)), event_logs=json.dumps(str(history / "runs")))


@dataclass
class BuildReport:
    built: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # partition key -> error
    published: dict[str, Any] = field(default_factory=dict)  # mds_index metadata
    checks: dict[str, bool] = field(default_factory=dict)  # check name -> passed
    check_problems: dict[str, str] = field(default_factory=dict)  # check name -> why it failed
    without_batch: list[str] = field(default_factory=list)  # published partitions whose raw batch is gone
    damaged: dict[str, str] = field(default_factory=dict)  # --verify: partition or published shard -> problem
    dataset_state: str = ""  # what the output holds after a failure, read back
    no_batch: list[str] = field(default_factory=list)  # raw files of records that are no batch (`*.json`, CSV)

    @property
    def ok(self) -> bool:
        return not self.failed and all(self.checks.values())


def dagster_home() -> Path:
    """DAGSTER_HOME; by default `./.dagster_home`, the one `dagster dev` uses per the README."""
    return Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()


def dagster_instance() -> DagsterInstance:
    """The instance at `dagster_home()`. Its `dagster.yaml` is written only when there is none
    (never overwritten)."""
    home_path = dagster_home()
    home_path.mkdir(parents=True, exist_ok=True)
    config = home_path / "dagster.yaml"
    if not config.exists():
        config.write_text(instance_config(home_path))
    return open_instance(str(home_path))


def open_instance(dagster_home: str) -> DagsterInstance:
    """The instance at `dagster_home` as configured, its step output captured without `tail -F`
    processes that could outlive a killed build (compute_logs.FileComputeLogManager). Decided from
    the configuration, so that one instance is opened, not two: opening one checks the schema of
    each of its databases."""
    read_dagster_migration_scripts_once()
    return instance_with_overrides(dagster_home, without_tail(configured_compute_logs(dagster_home)) or {})


def build(settings: MDSSettings, workers: int = 2, progress: bool = True, verify: bool = False) -> BuildReport:
    """`verify`: read every partition's and published shard against its manifest first, and
    rebuild / place again what is damaged (core.damage)."""
    settings.check()
    options = settings.fsspec_options()
    # before anything is registered or written
    check_output_may_be_written(settings.out_url, settings.format, options, adopt=settings.adopt_output)
    instance = dagster_instance()
    bind_instance(instance, settings.raw_url, settings.out_url)
    report = BuildReport()
    groups = settings.raw_groups(report.no_batch)
    if verify:
        damage = clear_damage(settings.out_url, options, {group.partition_key for group in groups})
        report.damaged = damage.cleared
        report.failed.update(damage.unrepairable)
    before = read_state(Storage(settings.out_url, options))
    try:
        fail_runs_of_ended_processes(instance)
        _build_groups(settings, instance, groups, workers, progress, report)
    except Exception as error:
        if not is_instance_failure(error):
            raise
        # The instance's database failed past Dagster's retries: wait a bounded time for it to mark
        # the runs left unfinished failed; say so, then what --out holds.
        report.failed[INSTANCE_FAILED] = settle_after_instance_failure(instance, error, say=_say)
    if report.failed:
        after = read_state(Storage(settings.out_url, options))
        report.dataset_state = describe_change(settings.out_url, before, after, None)
    return report


INSTANCE_FAILED = "dagster instance"  # the key of BuildReport.failed for a failure of the instance itself


def _say(line: str) -> None:
    print(redact(line), file=sys.stderr, flush=True)


def _build_groups(
    settings: MDSSettings,
    instance: DagsterInstance,
    groups: list[RawGroup],
    workers: int,
    progress: bool,
    report: BuildReport,
) -> None:
    """Materialise the partitions that are not current, then publish (only if none failed)."""
    options = settings.fsspec_options()
    instance.add_dynamic_partitions(RAW_BATCHES, [group.partition_key for group in groups])
    current = current_partitions(groups, settings)
    stale = [group for group in groups if group.partition_key not in current]
    report.unchanged = [group.partition_key for group in groups if group.partition_key in current]
    ranges = contiguous_ranges(stale, instance.get_dynamic_partitions(RAW_BATCHES), workers)
    try:
        for key, error in _materialise_ranges(ranges, settings, instance, workers, progress):
            if error is None:
                report.built.append(key)
            else:
                report.failed[key] = error
    finally:
        remove_staging_root(settings.out_url, options)
    if groups and not report.failed:
        _publish(settings, instance, [group.partition_key for group in groups], report)


def _publish(settings: MDSSettings, instance: DagsterInstance, keys: list[str], report: BuildReport) -> None:
    """Publish every partition in storage, then confirm every batch of this build is in it."""
    complete, _ = stored_partitions(settings.out_url, settings.fsspec_options())
    missing = sorted(set(keys) - set(complete))
    if missing:
        report.failed.update(
            {key: "its partition has no dataset after the build (removed while it ran?)" for key in missing}
        )
        return
    orphans = [key for key in complete if key not in set(keys)]
    for key, repeated in repeated_partitions(settings.out_url, settings.fsspec_options(), orphans, keys).items():
        report.failed[key] = (
            f"its raw batch is gone, and it holds {repeated} (a renamed batch?): "
            "publishing both would publish its samples twice; `mds-assets prune` removes partitions whose "
            "raw batch is gone"
        )
    if report.failed:
        return
    # the named job, as in the UI; reconstructable, settings as run config, on MDS_EXECUTOR's executor
    result = run_job("publish_index", settings, instance, tags={"mds/launched_by": "mds-assets build"})
    if not result.success:
        report.failed[MDS_INDEX.to_user_string()] = first_error(result)
        return
    report.published = dict(result.asset_materializations_for_node(MDS_INDEX.to_user_string())[0].metadata)
    published = report.published["partitions"].value
    report.failed.update({key: "not in the published dataset" for key in keys if key not in published})
    report.without_batch = sorted(set(published) - set(keys))
    for evaluation in result.get_asset_check_evaluations():
        report.checks[evaluation.check_name] = evaluation.passed
        why = why_it_failed(evaluation)
        if not evaluation.passed and why:
            report.check_problems[evaluation.check_name] = why


def _materialise_ranges(
    ranges: list[list[RawGroup]], settings: MDSSettings, instance: DagsterInstance, workers: int, progress: bool
) -> Iterator[tuple[str, str | None]]:
    """Yield (partition key, error or None) for each partition as its range's run ends."""
    bar = tqdm(total=sum(map(len, ranges)), desc="partitions", unit="partition", disable=not progress or not ranges)
    try:
        if workers <= 1 or len(ranges) <= 1:
            for batches in ranges:
                yield from materialise_range(batches, settings.model_dump(), instance).items()
                bar.update(len(batches))
            return
        preload_code_location()  # before the fork: every worker starts with the jobs loaded
        home, config = instance.root_directory, settings.model_dump()
        if uses_sqlite_storage(instance):
            _INHERITED_INSTANCES[home] = instance
        with ProcessPoolExecutor(
            max_workers=min(workers, len(ranges)),
            mp_context=_worker_context(),
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            futures = {pool.submit(materialise_range, batches, config, home): batches for batches in ranges}
            lost: list[Exception] = []
            for future in as_completed(futures):
                try:
                    results = _range_result(future, futures[future])
                except CancelledError:
                    continue
                except Exception as error:
                    if not is_instance_failure(error):
                        raise
                    lost.append(error)
                    for waiting in futures:  # a range not started yet would only meet the failed database
                        waiting.cancel()
                    continue
                yield from results.items()
                bar.update(len(futures[future]))
            if lost:  # every running range has ended: all the runs left unfinished are known
                raise InstanceLost(last_line(lost[0]), tuple(i for error in lost for i in _run_ids(error)))
    finally:
        _INHERITED_INSTANCES.pop(instance.root_directory, None)
        bar.close()


def _run_ids(error: Exception) -> tuple[str, ...]:
    return error.run_ids if isinstance(error, InstanceLost) else ()


WORKER_DIED = (
    "a build worker process ended abruptly (killed, or out of memory) while building this range of "
    "partitions; nothing of it is published"
)


def _range_result(future: Future[dict[str, str | None]], batches: list[RawGroup]) -> dict[str, str | None]:
    """A range's result; when its worker died, every partition of the range failed, saying so
    (the pool is then broken, so every range still running or waiting ends the same way)."""
    try:
        return future.result()
    except BrokenProcessPool:
        return dict.fromkeys((batch.partition_key for batch in batches), WORKER_DIED)


def _worker_context() -> multiprocessing.context.BaseContext:
    """Fork: workers start with Dagster already imported (spawn/forkserver measured 1.2-1.5x
    slower end to end), the code location loaded and, for SQLite, the build's instance (see
    _worker_instance). Safe here: Dagster's own SQLite storages keep no open connection, the
    kept-connection storages of the instance mds-assets writes never use a parent's connection
    in a forked child (it opens its own: kept_connection_storage), and an instance of any other
    storage is opened afresh."""
    return multiprocessing.get_context("fork")


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(parent_pid: int) -> None:
    """Pool worker initializer: on Linux the kernel SIGKILLs the worker when the process that
    started it dies, so `kill -9` of `mds-assets build` leaves no orphaned workers building on.
    (The signal follows the thread that forked the worker: the one that submits to the pool,
    which waits for the pool until it ends.) A parent that died before the signal was armed is
    caught by comparing the parent's pid with the one the pool was started from."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(error)}")
    if os.getppid() != parent_pid:
        os._exit(1)


# The build's own instance, by DAGSTER_HOME, while its workers are forked: a forked worker uses the
# copy it starts with. Sound for a SQLite instance whose storages use no connection across a fork
# (Dagster's open one per call; the kept-connection ones open their own in a forked child) and
# hold no thread.
_INHERITED_INSTANCES: dict[str, DagsterInstance] = {}


@functools.cache
def _worker_instance(dagster_home: str) -> DagsterInstance:
    """One instance per worker process and home: opening one (~0.3 s: each of its databases'
    schema checked) costs more than a small partition's run. A worker forked from the build
    uses the build's SQLite instance as it inherited it; any other instance (PostgreSQL: pooled
    connections, which two processes must not share) is opened afresh."""
    inherited = _INHERITED_INSTANCES.get(dagster_home)
    return inherited if inherited is not None else open_instance(dagster_home)


def materialise_range(
    batches: list[RawGroup], settings: dict[str, Any], instance: DagsterInstance | str
) -> dict[str, str | None]:
    """One Dagster run for a range of partitions: each partition key with its error, or None.
    In a worker process `instance` is the DAGSTER_HOME path (an instance does not cross processes)."""
    if isinstance(instance, str):
        instance = _worker_instance(instance)
    keys = [batch.partition_key for batch in batches]
    # the named job, as in the UI; reconstructable, settings as run config, on MDS_EXECUTOR's executor
    result = run_job(
        "build_partition",
        MDSSettings(**settings),
        instance,
        partitions=(keys[0], keys[-1]),
        tags={"mds/launched_by": "mds-assets build"},
        batches=batches,
    )
    if result.success:
        return dict.fromkeys(keys)
    failed = _failed_partitions(result)
    if not failed:  # the run itself failed (a step process killed, a worker lost): every partition with it
        failed = dict.fromkeys(keys, first_error(result))
    return {key: failed.get(key) for key in keys}


def _failed_partitions(result: JobExecutionResult) -> dict[str, str]:
    """The batch pipeline's own account of which partitions failed, and why (its Failure's
    metadata): it raises it after every partition of its range was tried, so the others are built."""
    for event in result.all_events:
        failed = failure_metadata(event, "failed_partitions")
        if isinstance(failed, dict):
            return {str(key): str(error) for key, error in failed.items()}
    return {}
