"""The code location: every asset, check, job, schedule, sensor and resource, in one place."""

from dagster import Definitions

from .assets.index import mds_index
from .assets.raw import raw_samples
from .assets.selected import selected_samples
from .assets.shards import mds_shards
from .checks import index_consistency, samples_decode
from .jobs import build_partition_job, index_checks_job, partition_checks_job, publish_index_job
from .resources import settings_from_environment
from .schedules import nightly_publish_schedule
from .sensors import failed_check_alert_sensor, raw_batch_sensor

ASSETS = [raw_samples, selected_samples, mds_shards, mds_index]
CHECKS = [index_consistency, samples_decode]

defs = Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    jobs=[build_partition_job, publish_index_job, index_checks_job, partition_checks_job],
    schedules=[nightly_publish_schedule],
    sensors=[raw_batch_sensor, failed_check_alert_sensor],
    resources={"mds_settings": settings_from_environment()},
)
