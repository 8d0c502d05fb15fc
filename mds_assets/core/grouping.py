"""Partitions as groups of raw files, sized by bytes, and stable when files come and go.

A partition is a run of neighbouring raw files (in partition-key order) of up to
`partition_bytes`; a file of `partition_bytes` or more is a partition of its own. Each file
weighs its bytes plus `FILE_OPEN_BYTES` (what opening one more file costs), so a group never
holds more than `partition_bytes / FILE_OPEN_BYTES` files, however small they are.

Where a group ends is decided by the files themselves, not by counting from the first file
(which would move every boundary after an inserted file): a group ends after a file whose
name hashes under a threshold proportional to the file's weight (content-defined chunking
over names, at a rate that makes such "natural" segments weigh `partition_bytes / 2` on
average), before and after a large file, and, inside a natural segment heavier than the cap,
where the next file would overflow it. So adding, changing or removing a file changes the
groups of its own natural segment only (usually one group, two when the cap or a moved cut
splits the segment); every other group keeps its members, its key and its built dataset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .raw_sources import RawBatch, read_records

FILE_OPEN_BYTES = 64 * 1024  # what one more file weighs beyond its bytes: a request, a stat, a parse start
SHARDS_PER_PARTITION = 4  # the default partition_bytes, in shards of the configured shard_size_limit
KEY_STEM_LENGTH = 80  # of the first file's key, in a group's key (which must stay under 128 characters)
_HASH_RANGE = 1 << 64


def default_partition_bytes(shard_size_limit: int) -> int:
    """A few shards' worth: small files land in partitions of a few full shards."""
    return SHARDS_PER_PARTITION * shard_size_limit


class RecordPlace(int):
    """A record's number in its group (so places order, compare and are stored as the line
    numbers of a single file are), with the member file it comes from and its line (row, or
    file number) in that file, for messages."""

    batch: str
    line: int

    def __new__(cls, number: int, batch: str, line: int) -> RecordPlace:
        place = super().__new__(cls, number)
        place.batch, place.line = batch, line
        return place

    def __str__(self) -> str:
        return f"batch {self.batch}, line {self.line}"

    def __repr__(self) -> str:
        return f"RecordPlace({int(self)}, {self.batch!r}, {self.line})"


def place_of(batch: str, line: int | RecordPlace) -> str:
    """ "batch <file>, line <n>" for a record, whether its line is a group's place or a plain number."""
    return str(line) if isinstance(line, RecordPlace) else f"batch {batch}, line {line}"


@dataclass(frozen=True)
class RawGroup:
    """One partition's raw files (in key order): what a partition is built from."""

    members: tuple[RawBatch, ...]

    @cached_property
    def partition_key(self) -> str:
        """The only file's key; for several files the first file's key, the count and a short
        hash of the names (`hour-0001_30_files-1a2b3c4d`): readable, and unique per member list."""
        first = self.members[0].partition_key
        if len(self.members) == 1:
            return first
        names = "\n".join(member.name for member in self.members)
        digest = hashlib.sha256(names.encode()).hexdigest()[:8]
        return f"{first[:KEY_STEM_LENGTH]}_{len(self.members)}_files-{digest}"

    @property
    def name(self) -> str:
        """The file's name, or `first to last (N files)`, for messages."""
        if len(self.members) == 1:
            return self.members[0].name
        return f"{self.members[0].name} to {self.members[-1].name} ({len(self.members)} files)"

    @property
    def url(self) -> str:
        return self.members[0].url

    @property
    def layout(self) -> str:
        layouts = {member.layout for member in self.members}
        return layouts.pop() if len(layouts) == 1 else "mixed"

    @property
    def size(self) -> int:
        return sum(member.size for member in self.members)

    @cached_property
    def fingerprint(self) -> str:
        """Changes when any member's fingerprint does, or a member comes or goes."""
        listed = "\n".join(f"{member.name}|{member.fingerprint}" for member in self.members)
        return hashlib.sha256(listed.encode()).hexdigest()[:16]

    def member_fingerprints(self) -> list[list[str]]:
        """[[file name, fingerprint], ...]: what a partition's stamp records of its group."""
        return [[member.name, member.fingerprint] for member in self.members]


def weight(batch: RawBatch) -> int:
    return batch.size + FILE_OPEN_BYTES


def ends_segment(batch: RawBatch, partition_bytes: int) -> bool:
    """Whether a natural segment ends after this file: its name's hash falls under a threshold
    proportional to its weight (so segments weigh `partition_bytes / 2` on average, whatever the
    files' sizes), decided by the file alone."""
    threshold = min(_HASH_RANGE, weight(batch) * 2 * _HASH_RANGE // partition_bytes)
    return _name_hash(batch.name) < threshold


def _name_hash(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")


def group_batches(batches: Iterable[RawBatch], partition_bytes: int) -> list[RawGroup]:
    """The listing's files (in key order, as `list_batches` returns them) cut into partitions."""
    groups: list[RawGroup] = []
    current: list[RawBatch] = []
    current_weight = 0

    def close() -> None:
        nonlocal current, current_weight
        if current:
            groups.append(RawGroup(tuple(current)))
        current, current_weight = [], 0

    for batch in batches:
        if weight(batch) >= partition_bytes:  # a large file: a partition of its own
            close()
            current = [batch]
            close()
            continue
        if current_weight + weight(batch) > partition_bytes:  # the cap, inside a heavy natural segment
            close()
        current.append(batch)
        current_weight += weight(batch)
        if ends_segment(batch, partition_bytes):
            close()
    close()
    return groups


def read_group(
    group: RawGroup, storage_options: dict[str, Any] | None = None
) -> Generator[tuple[RecordPlace, dict[str, Any]], None, None]:
    """(place, record) for every record of every member, file after file, streamed; `close()`
    closes the member being read."""
    number = 0
    for member in group.members:
        records = read_records(member, storage_options)
        try:
            for line, record in records:
                number += 1
                yield RecordPlace(number, member.name, line), record
        finally:
            records.close()


def groups_by_key(groups: Sequence[RawGroup]) -> dict[str, RawGroup]:
    return {group.partition_key: group for group in groups}
