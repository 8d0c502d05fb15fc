"""The code location: every asset, check, job, schedule, sensor and resource, in one place."""

from dagster import Definitions, JobDefinition

from .assets.batch_pipeline import batch_pipeline
from .assets.index import mds_index
from .checks import index_consistency, samples_decode
from .execution import executor_from_environment
from .jobs import build_partition_job, index_checks_job, partition_checks_job, publish_index_job
from .resources import settings_from_environment
from .schedules import nightly_publish_schedule
from .sensors import ended_runs_sensor, failed_check_alert_sensor, failed_run_alert_sensor, raw_batch_sensor

SETTINGS = settings_from_environment()
ASSETS = [batch_pipeline, mds_index]  # raw_samples -> selected_samples -> mds_shards, then mds_index
CHECKS = [index_consistency, samples_decode]

defs = Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    jobs=[build_partition_job, publish_index_job, index_checks_job, partition_checks_job],
    schedules=[nightly_publish_schedule],
    sensors=[raw_batch_sensor, failed_check_alert_sensor, failed_run_alert_sensor, ended_runs_sensor],
    resources={"mds_settings": SETTINGS},
    executor=executor_from_environment(),  # MDS_EXECUTOR: in_process (default), multiprocess, celery, k8s
)


def job(name: str) -> JobDefinition:
    """A job of this code location, resolved: the target of `reconstructable`, so that another
    process (a Celery worker, a Kubernetes Job) can load the same job by module and name."""
    return defs.resolve_job_def(name)


def build_partition() -> JobDefinition:
    return job("build_partition")


def publish_index() -> JobDefinition:
    return job("publish_index")
