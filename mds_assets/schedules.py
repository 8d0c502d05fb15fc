"""Schedules: a nightly republish from whatever partitions are materialised, with its checks."""

from dagster import DefaultScheduleStatus, ScheduleDefinition

from .jobs import publish_index_job

nightly_publish_schedule = ScheduleDefinition(
    name="nightly_publish",
    job=publish_index_job,
    cron_schedule="0 3 * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Republish the index from the materialised partitions and run its checks (idempotent).",
)
