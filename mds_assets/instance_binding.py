"""One Dagster instance, one dataset: the raw/out pair an instance's partitions belong to.

The asset graph has one set of partitions (one per group of raw batches). Builds of two raw/out pairs
in one instance would register both sets of batches as partitions of the same assets, and the
UI pointed at one dataset would show, and backfill, the other's. So the first `mds-assets
build` (or tick of raw_batch_sensor) records its pair in the instance's key-value store, and
anything with another pair is refused, naming the recorded one: another dataset gets another
DAGSTER_HOME.
"""

from __future__ import annotations

import json

from dagster import DagsterInstance

from .resources import absolute_url

DATASET_KEY = "mds_assets/dataset"


class InstanceHoldsAnotherDataset(ValueError):
    """The instance's partitions belong to another raw/out pair; the message names it."""


def recorded_pair(instance: DagsterInstance) -> tuple[str, str] | None:
    """(raw URL, out URL) recorded in the instance, or None before the first build."""
    value = instance.run_storage.get_cursor_values({DATASET_KEY}).get(DATASET_KEY)
    if not value:
        return None
    recorded = json.loads(value)
    return str(recorded["raw_url"]), str(recorded["out_url"])


def bind_instance(instance: DagsterInstance, raw_url: str, out_url: str) -> None:
    """Record the raw/out pair in an instance that holds none; refuse another pair (compared as
    `absolute_url` spells them: `file://` and a trailing `/` name the same location)."""
    pair = (absolute_url(raw_url), absolute_url(out_url))
    recorded = recorded_pair(instance)
    if recorded is None:
        instance.run_storage.set_cursor_values({DATASET_KEY: json.dumps({"raw_url": pair[0], "out_url": pair[1]})})
    elif (absolute_url(recorded[0]), absolute_url(recorded[1])) != pair:
        raise InstanceHoldsAnotherDataset(
            f"the Dagster instance at {instance.root_directory} holds the dataset built from {recorded[0]} into "
            f"{recorded[1]}; using {pair[0]} into {pair[1]} there would add its batches to that dataset's "
            "partitions. If it is the same dataset, give these URLs (a typo?); if it is another, give it its "
            "own instance: set DAGSTER_HOME to another folder"
        )
