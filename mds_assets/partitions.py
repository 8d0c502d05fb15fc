"""The one partitioning of this code location: a dynamic partition per group of raw files (its
key is derived from the files' names in `core.grouping` and checked in `core.layout`)."""

from dagster import DynamicPartitionsDefinition

RAW_BATCHES = "raw_batches"  # the partitions definition's name, for instance calls that take it
raw_batches = DynamicPartitionsDefinition(name=RAW_BATCHES)


def partition_range_tags(first: str, last: str) -> dict[str, str]:
    """The run tags of a run over the partitions `first` to `last` (in registration order), as
    Dagster's single-run backfills tag theirs; one partition is the `dagster/partition` tag."""
    if first == last:
        return {"dagster/partition": first}
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
