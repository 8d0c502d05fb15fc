"""Sensors: new or changed raw batches become partition runs; failed checks raise an alert."""

import hashlib
import json
import os
import urllib.request
from urllib.parse import urlsplit

from dagster import (
    AssetCheckKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from writer.secrets import redact

from .assets.batch_pipeline import listing_config
from .core.raw_sources import RawBatch, RawDataError, list_batches
from .core.stamps import partition_is_current
from .core.work_split import at_most, contiguous_ranges
from .jobs import build_partition_job
from .keys import CHECK_KEYS
from .partitions import RAW_BATCHES, partition_range_tags, raw_batches
from .resources import MDSSettings

ALERT_WEBHOOK_VARIABLE = "MDS_ALERT_WEBHOOK_URL"


def alert_webhook_url() -> str | None:
    """MDS_ALERT_WEBHOOK_URL, or None when unset; ValueError when no alert could ever be posted
    to it. The message names the variable, never its value: a webhook URL holds its token."""
    url = os.environ.get(ALERT_WEBHOOK_VARIABLE)
    if not url:
        return None
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        usable = False
    if not usable:
        raise ValueError(
            f"{ALERT_WEBHOOK_VARIABLE} must be an http:// or https:// URL with a host, such as "
            "https://hooks.slack.com/services/...; its value is not shown (it holds a token)"
        )
    return url


alert_webhook_url()  # checked when the code location loads
SENSOR_INTERVAL_SECONDS = int(os.environ.get("MDS_SENSOR_INTERVAL_SECONDS", "30"))
# A run builds at most this many partitions: the run queue still spreads a large import over
# runs in parallel, and Dagster's fixed cost per run is paid once per range, not per batch.
PARTITIONS_PER_RUN = int(os.environ.get("MDS_SENSOR_PARTITIONS_PER_RUN", "8"))
if PARTITIONS_PER_RUN < 1:
    raise ValueError(f"MDS_SENSOR_PARTITIONS_PER_RUN={PARTITIONS_PER_RUN}: expected 1 or more")


@sensor(
    job=build_partition_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Registers each new raw batch as a partition and requests build_partition runs for them (a "
    "run per range of up to 8 adjacent partitions); a changed batch is requested again, a batch already built "
    "from the same data and settings is not.",
)
def raw_batch_sensor(context: SensorEvaluationContext, mds_settings: MDSSettings) -> SensorResult | SkipReason:
    """Lists the raw URL; registers each new batch as a partition and requests runs for the
    batches to build, a run per range of adjacent partitions (at most PARTITIONS_PER_RUN). A
    batch whose size, ETag or mtime changed is requested again; a batch whose partition is
    already built from it with the current settings (by `mds-assets build`, say) is not. The
    cursor maps each partition key to its batch's fingerprint."""
    try:
        batches = list_batches(mds_settings.raw_url, mds_settings.fsspec_options())
    except RawDataError as error:
        return SkipReason(str(error))
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    registered = list(context.instance.get_dynamic_partitions(RAW_BATCHES))
    known = set(registered)
    new_keys = [b.partition_key for b in batches if b.partition_key not in known]
    to_build = [
        b for b in batches if seen.get(b.partition_key) != b.fingerprint and not partition_is_current(b, mds_settings)
    ]
    ranges = at_most(contiguous_ranges(to_build, registered + new_keys, workers=1), PARTITIONS_PER_RUN)
    cursor = json.dumps({b.partition_key: b.fingerprint for b in batches}, sort_keys=True)
    return SensorResult(
        run_requests=[_run_request(batches) for batches in ranges],
        dynamic_partitions_requests=[raw_batches.build_add_request(new_keys)] if new_keys else [],
        cursor=cursor,
    )


def _run_request(batches: list[RawBatch]) -> RunRequest:
    """One run for a range of partitions (registered in this order), with the sensor's listing
    of their batches, so the run does not list the raw URL again."""
    first, last = batches[0].partition_key, batches[-1].partition_key
    fingerprints = ",".join(f"{b.partition_key}:{b.fingerprint}" for b in batches)
    run_key = f"{first}..{last}:{hashlib.sha256(fingerprints.encode()).hexdigest()[:16]}"
    tags = {"mds/batches": str(len(batches))}
    config = {"ops": listing_config(batches)}
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
            if status == _PLANNED and not _run_is_over(context, record.run_id):
                unsettled.append(record.id)
            elif status == _FAILED and record.id not in alerted_ids:
                alerted_ids.add(record.id)
                partition = f" partition {record.partition}" if record.partition else ""
                alerts.append(f"check {check_key.to_user_string()}{partition} failed in run {record.run_id}")
    settled = min(unsettled) - 1 if unsettled else newest
    cursor = json.dumps({"settled": settled, "alerted": sorted(i for i in alerted_ids if i > settled)})
    if not alerts:
        context.update_cursor(cursor)
        return SkipReason("no new failed checks")
    for alert in alerts:
        context.log.error(alert)
        _post_webhook(alert, context)
    return SensorResult(cursor=cursor)


_FAILED = "FAILED"  # AssetCheckExecutionRecordStatus.FAILED; the enum is not exported by `dagster`
_PLANNED = "PLANNED"
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
    1.13.27 (pinned) has no public history call (the instance offers only the latest record),
    so this is the one place that reads the event log storage directly."""
    storage = context.instance.event_log_storage
    records: list = []
    before = None
    while True:
        page = [
            record
            for record in storage.get_asset_check_execution_history(check_key, limit=_PAGE, cursor=before)
            if record.id > above
        ]
        records += page
        if len(page) < _PAGE or not every_page:
            return records
        before = page[-1].id


def _post_webhook(message: str, context: SensorEvaluationContext) -> None:
    try:
        url = alert_webhook_url()
    except ValueError as error:  # changed since the code location loaded
        context.log.warning(f"alert webhook not posted: {error}")
        return
    if not url:
        return
    request = urllib.request.Request(
        url, data=json.dumps({"text": message}).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except (OSError, ValueError) as error:
        context.log.warning(f"alert webhook failed: {redact(str(error))}")  # the URL may hold a token: not logged
