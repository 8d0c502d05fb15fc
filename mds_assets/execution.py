"""Which engine runs a run's steps, chosen by configuration: `MDS_EXECUTOR`.

* `in_process` (default): every step of a run in the run's own process. A partition run is
  one step (`batch_pipeline`) and a publish run a strict chain (mds_index, then its checks),
  so a process per step would buy no parallelism and cost a Python start-up with Dagster and
  this code location (~1.5 s) per step; parallelism comes from runs (`mds-assets build
  --workers`: one range of partitions per worker; or the run queue).
* `multiprocess`: Dagster's default, a child process per step on the run's machine.
* `celery`: each step is a Celery task on whichever worker takes it (`dagster-celery worker
  start -A dagster_celery.app -y deploy/celery-worker.yaml`); a run that ends while a task runs
  terminates it (celery_executor.py). Needs `MDS_CELERY_BROKER`
  (e.g. `redis://127.0.0.1:6379/0`); `MDS_CELERY_BACKEND` defaults to the broker. Both are
  read on the machine that runs the run, through Dagster's `EnvVar` (`{"env": ...}`), so URLs
  (which may hold a password) never enter run config. The instance must be one every worker
  reaches (PostgreSQL); no step hands data to another (each reads and writes the dataset's
  storage), so workers share no disk.
* `k8s`: dagster-k8s' `k8s_job_executor`, a Kubernetes Job per step (deploy/ has the chart values).

The executor's settings can still be overridden per run in the launchpad under `execution:`.
"""

from __future__ import annotations

from dagster import DagsterInstance, ExecutorDefinition, in_process_executor, multiprocess_executor

from . import settings
from .dagster_internals import uses_sqlite_storage

EXECUTOR_VARIABLE = settings.EXECUTOR.name
BROKER_VARIABLE = settings.CELERY_BROKER.name
BACKEND_VARIABLE = settings.CELERY_BACKEND.name
RESTORE_INTERVAL_SECONDS = 5


class ExecutorSettingError(settings.SettingError):
    pass


def executor_name() -> str:
    problem = settings.EXECUTOR.problem()
    if problem:
        raise ExecutorSettingError(problem)
    return settings.EXECUTOR.read()


def celery_config_source() -> dict:
    """Celery settings shared by the orchestrator and the workers (deploy/celery-worker.yaml repeats them).

    `task_acks_late`: a task is acknowledged when it ends, not when it starts, so a worker lost
    with its task (machine gone, `kill -9` of the whole worker) leaves the task unacknowledged
    in Redis, and a live worker takes it again once `visibility_timeout` seconds (default 600,
    MDS_CELERY_VISIBILITY_TIMEOUT) have passed since it was delivered, checking every 5 s: the
    step is retried within that bound. The timeout must exceed the longest step, or Redis
    would hand a task still running to a second worker. A step *process*
    killed while its worker lives is a `WorkerLostError` the orchestrator sees within a second:
    the run fails (`task_reject_on_worker_lost` stays False so that such a task is not retried
    forever)."""
    visibility = settings.CELERY_VISIBILITY_TIMEOUT.read()
    return {
        "task_acks_late": True,
        "task_reject_on_worker_lost": False,
        "worker_prefetch_multiplier": 1,
        "broker_connection_retry_on_startup": True,
        # Redis hands an unacknowledged task to another worker `visibility_timeout` seconds after
        # delivering it; a live worker looks for such tasks every restore_interval x throttle s.
        "broker_transport_options": {
            "visibility_timeout": visibility,
            "unacked_restore_interval": RESTORE_INTERVAL_SECONDS,
            "unacked_restore_throttle": 1,
        },
    }


def celery_executor_definition() -> ExecutorDefinition:
    try:
        from .celery_executor import terminating_celery_executor  # the `celery` extra
    except ImportError:
        raise ExecutorSettingError(
            f"{EXECUTOR_VARIABLE}=celery needs the celery extra: pip install 'mds-assets[celery]'"
        ) from None

    if not settings.CELERY_BROKER.read():
        raise ExecutorSettingError(
            f"{EXECUTOR_VARIABLE}=celery needs {BROKER_VARIABLE} (e.g. redis://127.0.0.1:6379/0)"
        )
    backend_variable = BACKEND_VARIABLE if settings.CELERY_BACKEND.read() else BROKER_VARIABLE
    return terminating_celery_executor.configured(
        {
            "broker": {"env": BROKER_VARIABLE},
            "backend": {"env": backend_variable},
            "config_source": celery_config_source(),
        },
        name="celery",
    )


def executor_from_environment() -> ExecutorDefinition:
    """The executor every job of the code location uses (UI, sensors, schedules, `mds-assets build`)."""
    name = executor_name()
    if name == "in_process":
        return in_process_executor
    if name == "multiprocess":
        return multiprocess_executor
    if name == "celery":
        return celery_executor_definition()
    try:
        from dagster_k8s import k8s_job_executor  # the `k8s` extra
    except ImportError:
        raise ExecutorSettingError(
            f"{EXECUTOR_VARIABLE}=k8s needs the k8s extra: pip install 'mds-assets[k8s]'"
        ) from None
    return k8s_job_executor


def check_instance(instance: DagsterInstance) -> None:
    """A distributed executor needs an instance every worker reaches: refuse SQLite up front
    (the workers would fail later with 'Could not load run')."""
    name = executor_name()
    if name in ("celery", "k8s") and uses_sqlite_storage(instance):
        raise ExecutorSettingError(
            f"{EXECUTOR_VARIABLE}={name} runs steps in other processes and machines, which cannot share the "
            f"SQLite instance at {instance.root_directory}: put `storage: postgres:` in its dagster.yaml "
            "(docs/operations.md)"
        )
