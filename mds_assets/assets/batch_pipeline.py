"""The batch pipeline: `raw_samples` -> `selected_samples` -> `mds_shards` of each partition, in one step.

Why one step: the three assets are a strict chain over the same records. In one step a batch
is read once — the preview that `raw_samples` shows and `selected_samples` checks the plan
against is the first records of the very read that `mds_shards` writes from — nothing passes
through intermediate storage, and no executor starts a process per asset. Each asset is still
materialised per partition with its own metadata, and can be materialised alone (a preview,
a plan check) or with `mds_shards`' check alone.

One run can build many partitions (`BackfillPolicy.single_run`: a backfill of a range of
partitions is one run, and `mds-assets build` gives each worker one range), so Dagster's fixed
cost per run is paid per range, not per partition. The raw URL is listed once per run, or not at
all when whoever launched the run listed it already (`mds-assets build` passes its listing as
the op's `batches` config). A partition that fails does not stop the others: they are
materialised, its error is logged, and the run fails naming every failed partition.
"""

import dataclasses
import posixpath
import time
from collections.abc import Iterable, Iterator
from typing import Any, Literal, TypeVar

from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    BackfillPolicy,
    Config,
    DagsterRunStatus,
    Failure,
    MetadataValue,
    Output,
    RunsFilter,
    multi_asset,
)
from pydantic import Field

from writer.lock import LockWait
from writer.secrets import redact

from ..checks import check_every_partition, record_shard_size, shard_size_spec
from ..core.field_check import FieldCheck, FieldsInNoBatchError
from ..core.grouping import RawGroup, groups_by_key
from ..core.ownership import check_output_may_be_written
from ..core.partition_writer import write_partition
from ..core.profile import reading
from ..core.raw_sources import RawBatch, RawDataError
from ..core.streaming_partition import write_streaming_partition
from ..core.wording import plural
from ..keys import MDS_SHARDS, RAW_SAMPLES, SELECTED_SAMPLES
from ..partitions import raw_batches
from ..resources import MDSSettings
from .raw import RAW_SAMPLES_SPEC, raw_samples_metadata
from .selected import SELECTED_SAMPLES_SPEC, checked_plan_metadata
from .shards import MDS_SHARDS_SPEC, shards_metadata

PIPELINE_OP = "batch_pipeline"
RUN_STATUS_POLL_SECONDS = 2.0  # how often a step writing a partition looks whether its run has ended
# How long a build waits for a partition another process writes (an orphaned step of a failed run
# stops within RUN_STATUS_POLL_SECONDS of the run's failure) before it fails naming the holder.
PARTITION_LOCK_WAIT_SECONDS = 60.0


class ListedBatch(Config):
    """A raw file as a listing found it: the fields of `core.raw_sources.RawBatch`, as config,
    and the key of the partition (group of files) it belongs to."""

    name: str
    url: str
    layout: Literal["jsonl", "parquet", "filetree", "refused"]
    fingerprint: str
    size: int
    problem: str = ""
    partition: str = ""


class BatchListing(Config):
    batches: list[ListedBatch] = Field(
        default_factory=list,
        description="The raw files as already listed by whoever launched the run (mds-assets build and the "
        "sensor fill it in), each with the key of its partition; empty: the run lists the raw URL itself, once.",
    )


def listing_config(groups: list[RawGroup]) -> dict[str, Any]:
    """The op config that hands a listing to the run (for `runs.run_config`): each group's
    files, in order, with the group's key."""
    listed = [
        dataclasses.asdict(member) | {"partition": group.partition_key} for group in groups for member in group.members
    ]
    return {PIPELINE_OP: {"config": {"batches": listed}}}


@multi_asset(
    name=PIPELINE_OP,
    specs=[RAW_SAMPLES_SPEC, SELECTED_SAMPLES_SPEC, MDS_SHARDS_SPEC],
    check_specs=[shard_size_spec()],
    partitions_def=raw_batches,
    backfill_policy=BackfillPolicy.single_run(),
    can_subset=True,  # an asset alone (a preview), or the check alone on what is in storage
)
def batch_pipeline(
    context: AssetExecutionContext, config: BatchListing, mds_settings: MDSSettings
) -> Iterator[AssetCheckEvaluation | AssetCheckResult | Output[None]]:
    if not (context.has_partition_key or context.has_partition_key_range):
        if context.selected_asset_keys:  # a launch with no partition picked: building nothing is no success
            raise Failure(
                description=f"{', '.join(sorted(k.to_user_string() for k in context.selected_asset_keys))} "
                "are partitioned by raw batch: choose a partition or a range of partitions to build"
            )
        yield from check_every_partition(context, mds_settings)  # "Execute all" on the Checks tab
        return
    keys = list(context.partition_keys)
    groups = _groups_by_key(config, mds_settings) if context.selected_asset_keys else {}
    fields = FieldCheck(
        mds_settings.selections(), [groups[k] for k in keys if k in groups], mds_settings.fsspec_options()
    )
    failed: dict[str, str] = {}
    for index, key in enumerate(keys):
        try:
            _build_partition(context, mds_settings, key, groups, fields)
        except FieldsInNoBatchError as error:  # every partition would fail on it: the run fails before writing
            raise Failure(
                description=str(error),
                metadata={"failed_partitions": MetadataValue.json(dict.fromkeys(keys, str(error)))},
            ) from None
        except RunEndedError as error:  # nothing more is recorded for a run that has ended
            failed.update(dict.fromkeys(keys[index:], str(error)))
            break
        except Exception as error:  # reported per partition; the run fails below
            failed[key] = redact(str(error)) or type(error).__name__  # fsspec's errors quote the URL they opened
            if len(keys) > 1:
                context.log.error(f"partition {key} failed: {failed[key]}")
    if failed:
        raise _failure(failed, len(keys))
    for check_key in context.selected_asset_check_keys:
        # The check's output, as Dagster yields it for an AssetCheckResult: its evaluations were
        # logged per partition above; without it Dagster logs that the op "did not yield or return
        # expected outputs" on every run.
        yield Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(check_key))


def _groups_by_key(config: BatchListing, settings: MDSSettings) -> dict[str, RawGroup]:
    if not config.batches:
        return groups_by_key(settings.raw_groups())
    members: dict[str, list[RawBatch]] = {}
    for entry in config.batches:
        fields = entry.model_dump()
        key = fields.pop("partition")
        batch = RawBatch(**fields)
        members.setdefault(key or batch.partition_key, []).append(batch)  # no key given: a file of its own
    for batch in (batch for batches in members.values() for batch in batches):
        # a listing of another raw URL (settings changed since, or typed by hand) is refused
        if (
            batch.name in ("", ".", "..")
            or "/" in batch.name
            or batch.url != posixpath.join(settings.raw_url.rstrip("/"), batch.name)
        ):
            raise RawDataError(
                f"the run's listed batch {batch.name!r} ({batch.url}) is not a batch directly under the raw URL "
                f"{settings.raw_url}; launch the run without the `batches` config to list it afresh"
            )
    return {key: _listed_group(key, batches) for key, batches in members.items()}


def _listed_group(key: str, batches: list[RawBatch]) -> RawGroup:
    """The group a run's listing names `key`; a key that is not its files' key is refused, so no
    partition is ever built from files that are not its own."""
    group = RawGroup(tuple(batches))
    if key != group.partition_key:
        raise RawDataError(
            f"the run's listing puts {group.name} in partition {key!r}, whose files they are not (their "
            f"partition is {group.partition_key!r}); launch the run without the `batches` config to list afresh"
        )
    return group


def _build_partition(
    context: AssetExecutionContext, settings: MDSSettings, key: str, groups: dict[str, RawGroup], fields: FieldCheck
) -> None:
    """The selected assets of one partition, each materialisation logged as it completes; then its check."""
    selected = context.selected_asset_keys
    if selected:
        group = groups.get(key)
        if group is None:
            raise RawDataError(
                f"no raw batch or group of raw files under {settings.raw_url} has partition key {key!r} (was it "
                "removed?); a file added or removed since the key was registered gives its group a new key"
            )
        with reading(group, settings.fsspec_options()) as batch_reading:
            preview = batch_reading.preview
            if selected & {SELECTED_SAMPLES, MDS_SHARDS}:
                fields.check(group, preview)  # once per run, before anything of it is materialised
            _materialised(context, RAW_SAMPLES, key, raw_samples_metadata(group, preview))
            if selected & {SELECTED_SAMPLES, MDS_SHARDS}:  # mds_shards writes only a checked plan
                _materialised(context, SELECTED_SAMPLES, key, checked_plan_metadata(settings.selections(), preview))
            if MDS_SHARDS in selected:
                check_output_may_be_written(
                    settings.out_url, settings.format, settings.fsspec_options(), settings.adopt_output, key
                )
                write = write_streaming_partition if settings.format == "streaming" else write_partition
                build = write(
                    group,
                    settings.selections(),
                    settings.out_url,
                    settings.shard_size_limit,
                    settings.compression,
                    settings.fsspec_options(),
                    records=_while_run_lasts(context, key, batch_reading.records()),
                    lock_wait=LockWait(PARTITION_LOCK_WAIT_SECONDS, context.log.warning),
                )
                _materialised(context, MDS_SHARDS, key, shards_metadata(build, group))
    if context.selected_asset_check_keys:
        record_shard_size(context, settings, key)


RUN_ENDED = {  # a run's status once it has ended (or is ending) without this step: how to say it
    DagsterRunStatus.FAILURE: "failed",
    DagsterRunStatus.CANCELING: "is being cancelled",
    DagsterRunStatus.CANCELED: "was cancelled",
}


class RunEndedError(RuntimeError):
    """The step's run failed or was terminated while the step still ran."""


def _stop_if_run_ended(context: AssetExecutionContext, key: str) -> None:
    """A step can outlive its run: a Celery task runs on after its orchestrator was lost (killed,
    its machine gone: nothing revokes the task). Once the run has failed or is being cancelled, the
    step records no partition as a success of that run and stops; what it promoted stays in
    storage, and the next run of the partition rebuilds or keeps it.

    Asked before every materialisation, so it asks for the run's id among the ended runs, not for
    the run: a range run's config lists every file of its range, and loading it each time would
    make the cost of a partition grow with the range."""
    run_id = context.run.run_id
    if not context.instance.get_run_ids(RunsFilter(run_ids=[run_id], statuses=list(RUN_ENDED)), limit=1):
        return
    run = context.instance.get_run_by_id(run_id)
    ended = RUN_ENDED.get(run.status, "ended") if run is not None else "ended"
    raise RunEndedError(
        f"the run {run_id} {ended} while this step still ran: partition {key} "
        "and those after it are not recorded as materialised by it"
    )


T = TypeVar("T")


def _while_run_lasts(context: AssetExecutionContext, key: str, records: Iterable[T]) -> Iterator[T]:
    """The records, until the step's run ends: every RUN_STATUS_POLL_SECONDS the step looks at its
    run's status, and stops writing (RunEndedError: the writer publishes nothing and frees the
    partition's lock) once the run has failed or is being cancelled. This bounds how long a step
    whose orchestrator was lost writes for a run that has ended, and how long a rerun waits for it.
    A look that fails (the instance unreachable for a moment) is skipped."""
    next_look = time.monotonic() + RUN_STATUS_POLL_SECONDS
    for record in records:
        if time.monotonic() >= next_look:
            try:
                _stop_if_run_ended(context, key)
            except RunEndedError:
                raise
            except Exception as error:
                context.log.warning(f"could not read the status of run {context.run.run_id}: {error}")
            next_look = time.monotonic() + RUN_STATUS_POLL_SECONDS
        yield record


def _materialised(context: AssetExecutionContext, asset_key: AssetKey, key: str, metadata: dict) -> None:
    """One partition of a selected asset materialised (logged now, as the partition completes),
    unless the run has ended meanwhile."""
    if asset_key in context.selected_asset_keys:
        _stop_if_run_ended(context, key)
        context.log_event(AssetMaterialization(asset_key=asset_key, partition=key, metadata=metadata))


def _failure(failed: dict[str, str], partitions: int) -> Failure:
    if partitions == 1:
        (description,) = failed.values()
    else:
        listed = "; ".join(f"{key}: {error}" for key, error in failed.items())
        description = f"{len(failed)} of {plural(partitions, 'partition')} failed — {listed}"
    return Failure(description=description, metadata={"failed_partitions": MetadataValue.json(failed)})
