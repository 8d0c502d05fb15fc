"""Sensors: new or changed raw batches become partition runs; failed checks and failed runs raise
an alert; runs whose `mds-assets build` process is gone are marked failed."""

import hashlib
import json
import urllib.request
from typing import Any

from dagster import (
    AssetCheckKey,
    DagsterRun,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from writer.secrets import redact

from . import settings
from .assets.batch_pipeline import listing_config
from .checks import why_it_failed
from .core.grouping import RawGroup, group_batches
from .core.raw_sources import RawDataError, list_batches
from .core.sensor_cursor import SensorCursor, listing_digest, request_id, settings_digest
from .core.stamps import current_partitions
from .core.work_split import at_most, contiguous_ranges
from .dagster_internals import CHECK_FAILED, CHECK_PLANNED, check_execution_history, failure_metadata
from .instance_binding import InstanceHoldsAnotherDataset, bind_instance
from .jobs import ALERTED_JOBS, build_partition_job
from .keys import CHECK_KEYS
from .partitions import RAW_BATCHES, partition_range_tags, partitions_of_run, raw_batches
from .resources import MDSSettings
from .runs import fail_runs_of_ended_processes, first_error_of

SENSOR_INTERVAL_SECONDS = settings.SENSOR_INTERVAL_SECONDS.read()
# A run builds at most this many partitions: the run queue still spreads a large import over
# runs in parallel, and Dagster's fixed cost per run is paid once per range, not per partition.
PARTITIONS_PER_RUN = settings.SENSOR_PARTITIONS_PER_RUN.read()


@sensor(
    job=build_partition_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Registers each new group of raw files as a partition and requests build_partition runs for "
    f"them (a run per range of up to {PARTITIONS_PER_RUN} adjacent partitions, MDS_SENSOR_PARTITIONS_PER_RUN); "
    "a changed group is requested again, a group already built from the same files and settings is not.",
)
def raw_batch_sensor(context: SensorEvaluationContext, mds_settings: MDSSettings) -> SensorResult | SkipReason:
    """Lists the raw URL; when the listing or the settings changed since the last tick, groups
    the files into partitions, registers the new ones and requests runs for the groups to
    build, a run per range of adjacent partitions (at most PARTITIONS_PER_RUN). A group is to
    build when its partition in storage is not built from its very files with the current
    settings (what storage records, read with one listing and concurrent stamp reads), unless
    it was requested already for the same files and settings (its run may still be queued).
    The cursor (`core.sensor_cursor`) stays small: a digest of the listing, and the groups
    requested and not yet built."""
    try:
        batches = list_batches(mds_settings.raw_url, mds_settings.fsspec_options())
    except RawDataError as error:
        return SkipReason(str(error))
    try:
        bind_instance(context.instance, mds_settings.raw_url, mds_settings.out_url)
    except InstanceHoldsAnotherDataset as error:
        return SkipReason(str(error))
    before = SensorCursor.parse(context.cursor)
    listing = listing_digest(batches, mds_settings)
    if listing == before.listing:
        return SensorResult(
            skip_reason="no raw file added, changed or removed, and no setting changed, since the last tick",
            cursor=context.cursor,
        )
    groups = group_batches(batches, mds_settings.partition_size())
    registered = list(context.instance.get_dynamic_partitions(RAW_BATCHES))
    known = set(registered)
    new_keys = [g.partition_key for g in groups if g.partition_key not in known]
    current = current_partitions(groups, mds_settings)
    waiting = {g.partition_key: request_id(g, mds_settings) for g in groups if g.partition_key not in current}
    to_build = [
        g
        for g in groups
        if g.partition_key in waiting and before.requested.get(g.partition_key) != waiting[g.partition_key]
    ]
    ranges = at_most(contiguous_ranges(to_build, registered + new_keys, workers=1), PARTITIONS_PER_RUN)
    return SensorResult(
        run_requests=[_run_request(groups, settings_digest(mds_settings)) for groups in ranges],
        dynamic_partitions_requests=[raw_batches.build_add_request(new_keys)] if new_keys else [],
        cursor=SensorCursor(listing, waiting).dump(),
    )


def _run_request(groups: list[RawGroup], settings: str) -> RunRequest:
    """One run for a range of partitions (registered in this order), with the sensor's listing
    of their files, so the run does not list the raw URL again. Its run key holds the settings'
    digest: Dagster launches a run key once, and a rebuild under other settings must run."""
    first, last = groups[0].partition_key, groups[-1].partition_key
    fingerprints = ",".join(f"{g.partition_key}:{g.fingerprint}" for g in groups) + f"@{settings}"
    run_key = f"{first}..{last}:{hashlib.sha256(fingerprints.encode()).hexdigest()[:16]}"
    tags = {"mds/batches": str(len(groups))}
    config = {"ops": listing_config(groups)}
    if first == last:  # Dagster resolves a single partition key itself
        return RunRequest(partition_key=first, run_key=run_key, tags=tags, run_config=config)
    return RunRequest(run_key=run_key, tags=tags | partition_range_tags(first, last), run_config=config)


@sensor(
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Logs each newly failed asset check as an error and, when MDS_ALERT_WEBHOOK_URL is set, "
    "POSTs it there.",
)
def failed_check_alert_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    """Alerts on every newly failed asset check: a log line, and a POST to the URL in
    MDS_ALERT_WEBHOOK_URL when set.

    A run plans (and numbers) its check executions when it starts and evaluates them as it goes
    (a range run: one partition after another), so an execution numbered below one already seen
    may fail later. The cursor is `settled` (every execution up to it is evaluated, or its run
    is over) and `alerted`, the executions above it already alerted."""
    settled, alerted_ids = _alert_cursor(context.cursor)
    newest, unsettled = settled, []
    alerts = []
    for check_key in CHECK_KEYS:
        # the first tick looks at the latest page only, as it always did: no flood of past failures
        for record in _check_executions(context, check_key, above=settled, every_page=bool(context.cursor)):
            newest = max(newest, record.id)
            status = record.status.value
            if status == CHECK_PLANNED and not _run_is_over(context, record.run_id):
                unsettled.append(record.id)
            elif status == CHECK_FAILED and record.id not in alerted_ids:
                alerted_ids.add(record.id)
                alerts.append(failed_check_alert(check_key, record))
    settled = min(unsettled) - 1 if unsettled else newest
    cursor = json.dumps({"settled": settled, "alerted": sorted(i for i in alerted_ids if i > settled)})
    if not alerts:
        context.update_cursor(cursor)
        return SkipReason("no new failed checks")
    for alert in alerts:
        context.log.error(alert["text"])
        _post_webhook(alert, context)
    return SensorResult(cursor=cursor)


@run_failure_sensor(
    # every run of the instance: a run `mds-assets build` executes itself has no code location origin
    monitor_all_code_locations=True,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Logs each failed run of this code location's jobs (launched from the UI, a sensor, the schedule "
    "or `mds-assets build`) as an error and, when MDS_ALERT_WEBHOOK_URL is set, POSTs it there.",
)
def failed_run_alert_sensor(context: RunFailureSensorContext) -> None:
    """A partition that failed to build is left out of the next publish, and no check looks at a
    partition that is not there: without this alert a failed run shows only in the UI's runs."""
    if context.dagster_run.job_name not in ALERTED_JOBS:
        return
    alert = failed_run_alert(context.dagster_run, [*context.get_step_failure_events(), context.failure_event])
    context.log.error(alert["text"])
    _post_webhook(alert, context)


def failed_run_alert(run: DagsterRun, failures: list[Any]) -> dict[str, Any]:
    """What an alert says of one failed run: its job, partitions and id, and why — each failed
    partition's error (the batch pipeline's account), else the first error of its steps or run."""
    partitions = partitions_of_run(run.tags)
    failed: dict[str, str] = {}
    for event in failures:
        by_partition = failure_metadata(event, "failed_partitions")
        if isinstance(by_partition, dict):
            failed.update({str(key): str(error) for key, error in by_partition.items()})
    reason = "; ".join(f"{key}: {error}" for key, error in list(failed.items())[:5]) or first_error_of(failures)
    where = f" (partitions {partitions})" if partitions else ""
    return {
        "text": f"run {run.run_id} of {run.job_name}{where} failed: {reason}",
        "job": run.job_name,
        "partitions": partitions,
        "failed_partitions": failed or None,
        "reason": reason,
        "run_id": run.run_id,
    }


@sensor(
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Marks failed the runs `mds-assets build` started on this host that the instance still holds as "
    "started although the build's process is gone (stopped by a database outage, or killed).",
)
def ended_runs_sensor(context: SensorEvaluationContext) -> SkipReason:
    """A run `mds-assets build` orchestrates in its own process (`execute_job`), not through the
    daemon's run launcher: Dagster's run monitoring cannot look at its worker (the default run
    launcher has no health check), so nothing else ends it once that process is gone without
    recording the run's end. This tick does, on the first tick after the database answers again."""
    failed = fail_runs_of_ended_processes(context.instance)
    for run_id in failed:
        context.log.warning(f"run {run_id} marked failed: the mds-assets build process that ran it is gone")
    if failed:
        return SkipReason(f"marked failed (their mds-assets build process is gone): {', '.join(failed)}")
    return SkipReason("no run of an ended mds-assets build process is unfinished")


def failed_check_alert(check_key: AssetCheckKey, record: Any) -> dict[str, str | None]:
    """What an alert says of one failed check execution (an `AssetCheckExecutionRecord`): which
    check and partition, why (the evaluation's description, else its `problem` metadata), how
    bad (ERROR or WARN) and in which run, as one line (`text`) and as fields for a receiver."""
    evaluation = record.event.dagster_event.event_specific_data if record.event and record.event.dagster_event else None
    severity = evaluation.severity.value if evaluation is not None else None
    reason = why_it_failed(evaluation) if evaluation is not None else None
    check = check_key.to_user_string()
    partition = f" partition {record.partition}" if record.partition else ""
    text = f"check {check}{partition} failed ({severity or 'severity unknown'}) in run {record.run_id}"
    return {
        "text": f"{text}: {reason}" if reason else text,
        "check": check,
        "partition": record.partition,
        "severity": severity,
        "reason": reason,
        "run_id": record.run_id,
    }


_PAGE = 50


def _alert_cursor(cursor: str | None) -> tuple[int, set[int]]:
    if not cursor:
        return 0, set()
    if cursor.isdigit():  # the cursor before range runs: the id of the last execution seen
        return int(cursor), set()
    parsed = json.loads(cursor)
    return int(parsed["settled"]), set(parsed["alerted"])


def _run_is_over(context: SensorEvaluationContext, run_id: str) -> bool:
    run = context.instance.get_run_by_id(run_id)
    return run is None or run.is_finished


def _check_executions(
    context: SensorEvaluationContext, check_key: AssetCheckKey, above: int, every_page: bool = True
) -> list:
    """Every execution of a check numbered above `above`, newest first, page by page. Dagster
    1.13.27 (pinned) has no public history call: `dagster_internals.check_execution_history`."""
    records: list = []
    before = None
    while True:
        page = [
            record
            for record in check_execution_history(context.instance, check_key, limit=_PAGE, before=before)
            if record.id > above
        ]
        records += page
        if len(page) < _PAGE or not every_page:
            return records
        before = page[-1].id


def _post_webhook(alert: dict[str, Any], context: SensorEvaluationContext | RunFailureSensorContext) -> None:
    """POSTs the alert as JSON: `text` (what Slack-style webhooks show) and its fields."""
    try:
        url = settings.ALERT_WEBHOOK_URL.read()
    except ValueError as error:  # changed since the code location loaded; the message never holds its value
        context.log.warning(f"alert webhook not posted: {error}")
        return
    if not url:
        return
    request = urllib.request.Request(
        url, data=json.dumps(alert).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except (OSError, ValueError) as error:
        context.log.warning(f"alert webhook failed: {redact(str(error))}")  # the URL may hold a token: not logged
