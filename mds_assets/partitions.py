"""The one partitioning of this code location: a dynamic partition per group of raw files (its
key is derived from the files' names in `core.grouping` and checked in `core.layout`)."""

from collections.abc import Mapping

from dagster import DynamicPartitionsDefinition

RAW_BATCHES = "raw_batches"  # the partitions definition's name, for instance calls that take it
raw_batches = DynamicPartitionsDefinition(name=RAW_BATCHES)


PARTITION_TAG = "dagster/partition"
RANGE_START_TAG, RANGE_END_TAG = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def partition_range_tags(first: str, last: str) -> dict[str, str]:
    """The run tags of a run over the partitions `first` to `last` (in registration order), as
    Dagster's single-run backfills tag theirs; one partition is the `dagster/partition` tag."""
    if first == last:
        return {PARTITION_TAG: first}
    return {RANGE_START_TAG: first, RANGE_END_TAG: last}


def partitions_of_run(tags: Mapping[str, str]) -> str | None:
    """What `partition_range_tags` tagged a run with, read back: `key`, `first..last`, or None."""
    if RANGE_START_TAG in tags:
        return f"{tags[RANGE_START_TAG]}..{tags.get(RANGE_END_TAG, '')}"
    return tags.get(PARTITION_TAG)
