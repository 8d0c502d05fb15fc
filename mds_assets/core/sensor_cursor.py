"""The raw-batch sensor's cursor: small whatever the number of raw files.

It holds a digest of the last listing (with the settings that decide how partitions are
built), so a tick that finds nothing changed stops after listing, and the groups it requested
that were not built yet when it looked, each with a digest of its files and the settings, so
a queued run is not requested twice. What is built is read from storage (the partitions'
stamps), never remembered here: the cursor grows with the partitions waiting to be built,
not with the files listed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from .grouping import RawGroup
from .raw_sources import RawBatch
from .stamps import BuildSettings, canonical_compression

DIGEST_LENGTH = 16


class PartitionedSettings(BuildSettings, Protocol):
    """The settings that decide the partitions and how they are written (`MDSSettings` is one)."""

    raw_url: str

    def partition_size(self) -> int: ...


@dataclass(frozen=True)
class SensorCursor:
    listing: str = ""  # digest of the files listed and the settings, at the last tick
    requested: dict[str, str] = field(default_factory=dict)  # partition key -> request_id, not built yet

    @classmethod
    def parse(cls, cursor: str | None) -> SensorCursor:
        """The cursor a tick left; anything else (none, or another sensor version's) is an empty one:
        then every group is looked up in storage, and only the ones not built are requested."""
        try:
            parsed = json.loads(cursor or "{}")
        except ValueError:
            return cls()
        if not isinstance(parsed, dict) or not isinstance(parsed.get("listing"), str):
            return cls()
        requested = parsed.get("requested")
        if not isinstance(requested, dict):
            return cls(parsed["listing"])
        return cls(parsed["listing"], {str(key): str(value) for key, value in requested.items()})

    def dump(self) -> str:
        return json.dumps({"listing": self.listing, "requested": self.requested}, sort_keys=True)


def settings_digest(settings: PartitionedSettings) -> str:
    """What decides the partitions and how they are written: a change of any of them is a change."""
    described = json.dumps(
        [
            settings.raw_url,
            settings.out_url,
            [str(selection) for selection in settings.selections()],
            settings.shard_size_limit,
            canonical_compression(settings.compression, settings.format),
            settings.format,
            settings.partition_size(),
        ]
    )
    return _digest([described])


def listing_digest(batches: Iterable[RawBatch], settings: PartitionedSettings) -> str:
    """The files (names and fingerprints) and the settings, as one digest."""
    return _digest([settings_digest(settings)] + [f"{batch.name}|{batch.fingerprint}" for batch in batches])


def request_id(group: RawGroup, settings: PartitionedSettings) -> str:
    """A group's files and the settings: a run requested for the same id needs no second request."""
    return _digest([settings_digest(settings), group.partition_key, group.fingerprint])


def _digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:DIGEST_LENGTH]
