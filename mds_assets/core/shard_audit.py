"""Reading published shards back against their manifest's CRC-32, at a bounded cost per check.

Each check (`index_consistency`, run after every publish and by the monitoring job
`check_published_dataset`) reads:

* every shard not verified since it was written: never verified, or whose stored stamp (size,
  modification time, ETag) or manifest checksum changed since it last was — so a shard
  rewritten or changed in place is always read at the next check, whatever its size;
* then the shards verified longest ago, up to MDS_VERIFY_BYTES_PER_CHECK bytes (default 1 GiB),
  each weighing its bytes plus SHARD_READ_BYTES, which finds damage that left no trace in the
  stamp (bit rot): every shard is read again at least once every (dataset weight / budget)
  checks. The weight of a read is what bounds tens of thousands of small shards: by bytes
  alone a check would read them all, a request each, after every publish.

When each shard was last verified is a record the caller keeps (the check keeps it in the
Dagster instance, so the dataset's folder is never written by monitoring); a shard that failed
is left out of it, so it is read again next time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from writer.manifest import Manifest, ShardRecord
from writer.storage import Storage
from writer.verify import damaged_shards

# What reading one more shard weighs beyond its bytes: an object store's GET takes about as long
# as 1 MiB takes to arrive.
SHARD_READ_BYTES = 1 << 20
Record = dict[str, dict[str, Any]]  # shard file -> {"stamp": ..., "verified_at": seconds since the epoch}


@dataclass(frozen=True)
class Audit:
    """What one check read, and what was wrong (each problem names its shard)."""

    verified: list[str] = field(default_factory=list)
    bytes_read: int = 0
    problems: dict[str, str] = field(default_factory=dict)  # shard file -> what is wrong with it


def bytes_per_check() -> int:
    """The byte budget of one check beyond the shards that changed (`settings.VERIFY_BYTES_PER_CHECK`)."""
    from ..settings import VERIFY_BYTES_PER_CHECK  # the settings module imports core/: imported when asked

    return VERIFY_BYTES_PER_CHECK.read()


def audit_shards(
    storage: Storage, manifest: Manifest, record: Record, budget: int | None = None
) -> tuple[Audit, Record]:
    """Read the shards due (see the module docstring) against `manifest`; returns what was found,
    and the record to keep for the next audit."""
    budget = bytes_per_check() if budget is None else budget
    stamps = storage.stamps()
    chosen = _due(manifest, stamps, record, budget)
    problems = damaged_shards(storage, manifest, {shard.file for shard in chosen})
    now = time.time()
    listed = {shard.file for shard in manifest.shards}
    updated = {name: entry for name, entry in record.items() if name in listed and name not in problems}
    for shard in chosen:
        if shard.file not in problems:
            updated[shard.file] = {"stamp": _stamp(shard, stamps), "verified_at": now}
    audit = Audit(
        verified=[shard.file for shard in chosen],
        bytes_read=sum(shard.stored_bytes for shard in chosen),
        problems=problems,
    )
    return audit, updated


def _due(manifest: Manifest, stamps: dict[str, str], record: Record, budget: int) -> list[ShardRecord]:
    changed: list[ShardRecord] = []
    unchanged: list[ShardRecord] = []
    for shard in manifest.shards:
        seen = record.get(shard.file)
        same = isinstance(seen, dict) and seen.get("stamp") == _stamp(shard, stamps)
        (unchanged if same else changed).append(shard)
    unchanged.sort(key=lambda shard: _verified_at(record[shard.file]))
    chosen, spent = list(changed), 0
    for shard in unchanged:
        weight = shard.stored_bytes + SHARD_READ_BYTES
        if spent + weight > budget:
            break
        chosen.append(shard)
        spent += weight
    return chosen


def _stamp(shard: ShardRecord, stamps: dict[str, str]) -> str:
    return f"{stamps.get(shard.file, 'missing')}|{shard.checksum}"


def _verified_at(entry: dict[str, Any]) -> float:
    try:
        return float(entry.get("verified_at") or 0)
    except (TypeError, ValueError):
        return 0.0  # an unreadable time: verified longest ago
