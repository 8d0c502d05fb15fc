"""The one partitioning of this code location: a dynamic partition per raw batch (its key is
derived from the batch name in `core.raw_sources` and checked in `core.layout`)."""

from dagster import DynamicPartitionsDefinition

RAW_BATCHES = "raw_batches"  # the partitions definition's name, for instance calls that take it
raw_batches = DynamicPartitionsDefinition(name=RAW_BATCHES)
