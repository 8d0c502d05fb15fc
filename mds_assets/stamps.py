"""What a partition's dataset was built from, kept beside it (`mds_source.json`).

The build command compares it with the batch as it is now and the current settings, so a
batch is rebuilt exactly when its content or the way it is written changed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from writer.storage import Storage
from writer.published import published_index_names

from .partitions import partition_url

if TYPE_CHECKING:
    from .raw_sources import RawBatch
    from .resources import MDSSettings

STAMP_NAME = "mds_source.json"


def build_stamp(batch_name: str, fingerprint: str, fields: list[str], shard_size_limit: int,
                compression: str | None) -> dict[str, Any]:
    return {"batch": batch_name, "fingerprint": fingerprint, "fields": list(fields),
            "shard_size_limit": shard_size_limit, "compression": compression}


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


def has_dataset(partition_url: str, storage_options: dict[str, Any] | None) -> bool:
    """A partition counts as built only when its dataset is published (its index exists)."""
    storage = Storage(partition_url, storage_options)
    return any(storage.exists(name) for name in published_index_names())


def partition_is_current(batch: RawBatch, settings: MDSSettings) -> bool:
    """The batch's partition holds a dataset built from this very batch (fingerprint) with these
    settings, whoever built it: the one test of "up to date", for `mds-assets build` and the sensor."""
    url = partition_url(settings.out_url, batch.partition_key)
    options = settings.fsspec_options()
    wanted = build_stamp(batch.name, batch.fingerprint, [str(s) for s in settings.selections()],
                         settings.shard_size_limit, settings.compression)
    return has_dataset(url, options) and read_stamp(url, options) == wanted
