"""`mds-assets build --verify`: find shards whose bytes no longer match their manifest, and clear
them so that the same build repairs them.

Every partition's shards and every published shard are read against the size and CRC-32 of
their manifest. A damaged partition loses its index (so it counts as not built, and the build
rebuilds it from its raw batch); a damaged published shard is removed (so the publish places it
again from its partition: without that, a publish that finds the same index and sizes would
leave it as it is). Locally the published shards are hard links of the partitions' files, so
a flipped byte is found in both, and both are repaired.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from writer.lock import DatasetLock
from writer.published import has_dataset, unpublish
from writer.storage import Storage
from writer.verify import damaged_shards, read_manifest

from .layout import partition_url, stored_partitions

PURPOSE = "mds-assets build --verify clearing damaged shards"


@dataclass
class Damage:
    """What --verify found: where (a partition, or a published shard) -> the problem."""

    cleared: dict[str, str] = field(default_factory=dict)  # to be rebuilt or placed again by this build
    unrepairable: dict[str, str] = field(default_factory=dict)  # partition key -> why it cannot be rebuilt


def clear_damage(out_url: str, storage_options: dict[str, Any] | None, batch_keys: Collection[str]) -> Damage:
    """Read every partition's and every published shard; clear what is damaged (see the module docstring)."""
    damage = Damage()
    complete, _ = stored_partitions(out_url, storage_options)
    for key in complete:
        storage = Storage(partition_url(out_url, key), storage_options)
        problems = _problems(storage)
        if not problems:
            continue
        text = "; ".join(problems)
        if key not in batch_keys:
            damage.unrepairable[key] = f"{text}; its raw batch is gone, so it cannot be rebuilt"
            continue
        with DatasetLock(storage, PURPOSE):
            unpublish(storage, storage.list_names())
        damage.cleared[f"partition {key}"] = text
    published = Storage(out_url, storage_options)
    problems_by_shard = _shard_problems(published) if has_dataset(published) else {}
    if problems_by_shard:
        with DatasetLock(published, PURPOSE):
            for name in problems_by_shard:
                published.remove(name)
        damage.cleared.update({f"published shard {name}": text for name, text in problems_by_shard.items()})
    return damage


def _problems(storage: Storage) -> list[str]:
    try:
        return list(damaged_shards(storage, read_manifest(storage)).values())
    except (OSError, ValueError) as error:  # no manifest, or one that does not parse
        return [str(error)]


def _shard_problems(storage: Storage) -> dict[str, str]:
    """The published dataset's damaged shards; none to clear without a manifest (the publish rewrites it)."""
    try:
        manifest = read_manifest(storage)
    except (OSError, ValueError):
        return {}
    return damaged_shards(storage, manifest)
