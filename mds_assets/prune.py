"""`mds-assets prune`: remove the partitions whose raw batch is gone, from storage and from the
Dagster instance; the next publish leaves them out of the published dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .build import dagster_instance
from .core.orphans import partitions_without_batch, remove_partition
from .core.ownership import check_output_is_ours
from .core.raw_sources import list_batches
from .instance_binding import bind_instance
from .partitions import RAW_BATCHES


@dataclass
class PruneReport:
    removed: list[str] = field(default_factory=list)  # partition folders deleted
    unregistered: list[str] = field(default_factory=list)  # partition keys deleted from the instance


def prune(raw_url: str, out_url: str, storage_options: dict[str, Any] | None = None) -> PruneReport:
    """Refuses an output mds-assets did not write, and an instance holding another dataset."""
    check_output_is_ours(out_url, storage_options)
    instance = dagster_instance()
    bind_instance(instance, raw_url, out_url)
    report = PruneReport()
    for key in partitions_without_batch(out_url, storage_options, list_batches(raw_url, storage_options)):
        remove_partition(out_url, storage_options, key)
        report.removed.append(key)
    registered = set(instance.get_dynamic_partitions(RAW_BATCHES))
    for key in report.removed:
        if key in registered:
            instance.delete_dynamic_partition(RAW_BATCHES, key)
            report.unregistered.append(key)
    return report
