"""What a partition's dataset was built from, kept beside it (`mds_source.json`).

The build command compares it with the partition's group of files as it is now and the
current settings, so a group is rebuilt exactly when a member's content, the member list, or
the way it is written changed. `built_at` orders partitions that share a file (a group
regrouped): the newer one holds it (`core.superseded`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from writer.manifest import MANIFEST_NAME, Manifest
from writer.published import has_dataset
from writer.reference_index import IndexReferenceError, read_index, stored_files_present
from writer.storage import Storage

from .layout import partition_url, stored_partition_names
from .output_format import DEFAULT_FORMAT, Format
from .output_format import canonical_compression as canonical_for_format

if TYPE_CHECKING:
    from .grouping import RawGroup
    from .selection import FieldSelection


class BuildSettings(Protocol):
    """What decides how a partition is written (the code location's `MDSSettings` is one)."""

    out_url: str
    shard_size_limit: int
    compression: str | None
    format: Format

    def selections(self) -> list[FieldSelection]: ...

    def fsspec_options(self) -> dict[str, Any] | None: ...


STAMP_NAME = "mds_source.json"
CONCURRENT_READS = 16  # partitions whose stamps are read at once: object-store requests are mostly waiting


BUILT_AT = "built_at"  # when the partition was built: not part of what it was built from
CONTENTS = "contents"  # each file's samples as written (core.member_contents): not part of it either


def build_stamp(
    group: RawGroup,
    fields: list[str],
    shard_size_limit: int,
    compression: str | None,
    format: Format = DEFAULT_FORMAT,
) -> dict[str, Any]:
    return {
        "batches": group.member_fingerprints(),
        "fields": list(fields),
        "shard_size_limit": shard_size_limit,
        "compression": canonical_compression(compression, format),
        **({"format": format} if format != DEFAULT_FORMAT else {}),  # composer stamps stay as they were
    }


def written_stamp(
    group: RawGroup,
    fields: list[str],
    shard_size_limit: int,
    compression: str | None,
    format: Format,
    contents: dict[str, list[int]],
) -> dict[str, Any]:
    """The stamp a partition is written with: what it was built from (`build_stamp`), when
    (orders it against an older partition holding some of its files, `core.superseded`), and what
    each of its files held (`core.member_contents`)."""
    return build_stamp(group, fields, shard_size_limit, compression, format) | {
        BUILT_AT: time.time(),
        CONTENTS: contents,
    }


def stamp_members(stamp: dict[str, Any]) -> list[str]:
    """The names of the raw files a partition was built from (a stamp of a single batch, too)."""
    if isinstance(stamp.get("batches"), list):
        return [str(entry[0]) for entry in stamp["batches"] if isinstance(entry, list) and entry]
    return [str(stamp["batch"])] if "batch" in stamp else []


def canonical_compression(compression: str | None, format: Format = DEFAULT_FORMAT) -> str | None:
    """One spelling per setting ("gz" and "gz:6" are the same), so a respelling rebuilds nothing."""
    return canonical_for_format(format, compression)


def encode_stamp(stamp: dict[str, Any]) -> bytes:
    return json.dumps(stamp, indent=1, sort_keys=True).encode()


def read_stamp(partition_url: str, storage_options: dict[str, Any] | None) -> dict[str, Any] | None:
    storage = Storage(partition_url, storage_options)
    try:  # one request, not a look and then a read: stamps are read for every partition
        stamp = json.loads(storage.read(STAMP_NAME))
    except (FileNotFoundError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def partition_is_current(group: RawGroup, settings: BuildSettings) -> bool:
    """The group's partition holds a dataset built from these very files (names and
    fingerprints) with these settings, whoever built it: the one test of "up to date", for
    `mds-assets build` and the sensor."""
    url = partition_url(settings.out_url, group.partition_key)
    options = settings.fsspec_options()
    wanted = build_stamp(
        group,
        [str(s) for s in settings.selections()],
        settings.shard_size_limit,
        settings.compression,
        settings.format,
    )
    stamp = read_stamp(url, options)
    if stamp is None or not has_dataset(Storage(url, options)) or not shards_stored(url, options):
        return False
    stamp.pop(BUILT_AT, None)
    stamp.pop(CONTENTS, None)  # what the files held when written, not what they were built from
    try:  # stamps written before compression was stored canonically
        stamp = {
            **stamp,
            "compression": canonical_compression(stamp.get("compression"), stamp.get("format", DEFAULT_FORMAT)),
        }
    except (TypeError, ValueError):
        return False
    return stamp == wanted


def shards_stored(partition_url: str, storage_options: dict[str, Any] | None) -> bool:
    """Every shard the partition's manifest lists is stored with its size (one listing): a
    partition that lost a shard counts as not built, so the next build rebuilds it."""
    storage = Storage(partition_url, storage_options)
    try:
        index = read_index(storage)
    except (OSError, IndexReferenceError):
        return False
    if index is not None:  # the streaming format: shards in the generation folder its index names
        return stored_files_present(storage, index)
    try:
        manifest = Manifest.from_json(storage.read(MANIFEST_NAME), storage.describe(MANIFEST_NAME))
    except (OSError, ValueError):
        return False
    sizes = storage.sizes()
    return all(sizes.get(shard.file) == shard.stored_bytes for shard in manifest.shards)


def current_partitions(groups: Sequence[RawGroup], settings: BuildSettings) -> set[str]:
    """The keys of the groups whose partition is current, found with one listing of
    `<out>/partitions/` (a group with no folder there is not built: no request for it) and the
    stamps of the others read concurrently, not one partition after another."""
    stored = stored_partition_names(settings.out_url, settings.fsspec_options())
    candidates = [group for group in groups if group.partition_key in stored]
    if not candidates:
        return set()
    with ThreadPoolExecutor(max_workers=min(CONCURRENT_READS, len(candidates))) as pool:
        current = pool.map(lambda group: partition_is_current(group, settings), candidates)
        return {group.partition_key for group, is_current in zip(candidates, current) if is_current}
