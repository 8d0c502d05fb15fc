"""The one partitioning of this code location: a dynamic partition per raw batch (its key is
derived from the batch name in `core.raw_sources` and checked in `core.layout`)."""

from dagster import DynamicPartitionsDefinition

raw_batches = DynamicPartitionsDefinition(name="raw_batches")
