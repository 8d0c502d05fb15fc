"""What a partition's dataset was built from, kept beside it (`mds_source.json`).

The build command compares it with the batch as it is now and the current settings, so a
batch is rebuilt exactly when its content or the way it is written changed.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Protocol

from writer.manifest import MANIFEST_NAME, Manifest
from writer.published import has_dataset
from writer.reference_index import IndexReferenceError, read_index, stored_files_present
from writer.storage import Storage

from .layout import partition_url
from .output_format import DEFAULT_FORMAT, Format
from .output_format import canonical_compression as canonical_for_format

if TYPE_CHECKING:
    from .raw_sources import RawBatch
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


def build_stamp(
    batch_name: str,
    fingerprint: str,
    fields: list[str],
    shard_size_limit: int,
    compression: str | None,
    format: Format = DEFAULT_FORMAT,
) -> dict[str, Any]:
    return {
        "batch": batch_name,
        "fingerprint": fingerprint,
        "fields": list(fields),
        "shard_size_limit": shard_size_limit,
        "compression": canonical_compression(compression, format),
        **({"format": format} if format != DEFAULT_FORMAT else {}),  # composer stamps stay as they were
    }


def settings_fingerprint(settings: BuildSettings) -> str:
    """A short digest of every setting that decides how a partition is written (what `build_stamp`
    records, and where): it changes exactly when `partition_is_current` would judge every
    partition again, so a sensor can remember the batches it saw under these settings only."""
    described = [
        settings.out_url,
        [str(s) for s in settings.selections()],
        settings.shard_size_limit,
        canonical_compression(settings.compression, settings.format),
        settings.format,
    ]
    return hashlib.sha256(json.dumps(described).encode()).hexdigest()[:12]


def canonical_compression(compression: str | None, format: Format = DEFAULT_FORMAT) -> str | None:
    """One spelling per setting ("gz" and "gz:6" are the same), so a respelling rebuilds nothing."""
    return canonical_for_format(format, compression)


def encode_stamp(stamp: dict[str, Any]) -> bytes:
    return json.dumps(stamp, indent=1, sort_keys=True).encode()


def read_stamp(partition_url: str, storage_options: dict[str, Any] | None) -> dict[str, Any] | None:
    storage = Storage(partition_url, storage_options)
    if not storage.exists(STAMP_NAME):
        return None
    try:
        return json.loads(storage.read(STAMP_NAME))
    except ValueError:
        return None


def partition_is_current(batch: RawBatch, settings: BuildSettings) -> bool:
    """The batch's partition holds a dataset built from this very batch (fingerprint) with these
    settings, whoever built it: the one test of "up to date", for `mds-assets build` and the sensor."""
    url = partition_url(settings.out_url, batch.partition_key)
    options = settings.fsspec_options()
    wanted = build_stamp(
        batch.name,
        batch.fingerprint,
        [str(s) for s in settings.selections()],
        settings.shard_size_limit,
        settings.compression,
        settings.format,
    )
    stamp = read_stamp(url, options)
    if stamp is None or not has_dataset(Storage(url, options)) or not shards_stored(url, options):
        return False
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
