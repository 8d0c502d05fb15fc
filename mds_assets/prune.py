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


def prune(
    raw_url: str, out_url: str, storage_options: dict[str, Any] | None = None, allow_empty_raw: bool = False
) -> PruneReport:
    """Refuses an output mds-assets did not write, and an instance holding another dataset. A raw
    URL that lists no batch at all is more often a mount not ready or files moved away than every
    batch deleted on purpose: removing every partition then needs `allow_empty_raw`."""
    check_output_is_ours(out_url, storage_options)
    instance = dagster_instance()
    bind_instance(instance, raw_url, out_url)
    report = PruneReport()
    batches = list_batches(raw_url, storage_options)
    gone = partitions_without_batch(out_url, storage_options, batches)
    if gone and not batches and not allow_empty_raw:
        raise ValueError(
            f"the raw URL {raw_url} lists no raw batch: pruning would remove every partition ({len(gone)}) of "
            f"{out_url}; nothing was removed. If every raw file is gone on purpose, run it again with "
            "--allow-empty-raw"
        )
    for key in gone:
        remove_partition(out_url, storage_options, key)
        report.removed.append(key)
    registered = set(instance.get_dynamic_partitions(RAW_BATCHES))
    for key in report.removed:
        if key in registered:
            instance.delete_dynamic_partition(RAW_BATCHES, key)
            report.unregistered.append(key)
    return report
