"""Partitions replaced by a regrouping: which stored partitions hold files a newer partition holds.

A file added next to others changes its group's member list, so the group gets a new key and
a new partition folder; the old folder still holds the other members' records. Publishing
both would publish those records twice, so the older of two partitions that share a file is
superseded: left out of the published dataset and removed. Its files are all held by newer
partitions once the regrouped partitions are built; a superseded partition holding a file
that no newer partition holds while that file is still a raw file is a regrouping half built,
and publishing waits for it (a file gone from the raw URL is dropped with its old partition).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from writer.storage import Storage

from .layout import partition_url
from .raw_sources import list_batches
from .stamps import BUILT_AT, CONCURRENT_READS, read_stamp, stamp_members
from .wording import first_names


@dataclass(frozen=True)
class Supersession:
    superseded: list[str] = field(default_factory=list)  # partition keys, sorted
    unheld: dict[str, list[str]] = field(default_factory=dict)  # superseded key -> its files no kept partition holds


def find_superseded(out_url: str, keys: list[str], storage_options: dict[str, Any] | None) -> Supersession:
    """Among the complete partitions `keys`: those sharing a file with a newer one (stamps read
    concurrently), and the files of each that no partition left holds."""
    if len(keys) < 2:
        return Supersession()
    with ThreadPoolExecutor(max_workers=min(CONCURRENT_READS, len(keys))) as pool:
        stamps = dict(zip(keys, pool.map(lambda key: read_stamp(partition_url(out_url, key), storage_options), keys)))
    members = {key: stamp_members(stamp) if stamp else [] for key, stamp in stamps.items()}
    built = {key: _built_at(stamp) for key, stamp in stamps.items()}
    newest: dict[str, str] = {}  # file -> the newest partition holding it
    for key in sorted(keys, key=lambda key: (built[key], key)):
        for name in members[key]:
            newest[name] = key
    superseded = sorted(key for key in keys if any(newest[name] != key for name in members[key]))
    lost = set(superseded)
    held = {name for key in keys if key not in lost for name in members[key]}
    unheld = {key: [name for name in members[key] if name not in held] for key in superseded}
    return Supersession(superseded, {key: names for key, names in unheld.items() if names})


def _built_at(stamp: dict[str, Any] | None) -> float:
    value = (stamp or {}).get(BUILT_AT, 0.0)
    return float(value) if isinstance(value, int | float) else 0.0


class RegroupingNotBuilt(ValueError):
    """A superseded partition holds raw files that no newer partition holds yet."""


def partitions_kept(
    out_url: str, raw_url: str, keys: list[str], storage_options: dict[str, Any] | None
) -> tuple[list[str], list[str]]:
    """(the partitions to publish, the superseded ones to remove after publishing). Raises
    RegroupingNotBuilt, naming the files, when publishing would leave out raw files whose new
    partition is not built yet (the raw URL is listed only then)."""
    found = find_superseded(out_url, keys, storage_options)
    if found.unheld:
        listed = {batch.name for batch in list_batches(raw_url, storage_options)}
        waiting = sorted(name for names in found.unheld.values() for name in names if name in listed)
        if waiting:
            shown = first_names(waiting, 10)
            raise RegroupingNotBuilt(
                f"partitions {', '.join(sorted(found.unheld))} were regrouped, and the new partitions of "
                f"{shown} are not built yet: build them first (mds-assets build, or the sensor's runs)"
            )
    superseded = set(found.superseded)
    return [key for key in keys if key not in superseded], found.superseded


def remove_partitions(out_url: str, keys: list[str], storage_options: dict[str, Any] | None) -> None:
    for key in keys:
        Storage(partition_url(out_url, key), storage_options).remove_all()
