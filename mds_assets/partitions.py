"""The one partitioning of this code location: a dynamic partition per raw batch.

A partition key becomes a directory name under the output root, so it is made safe here,
once: derived from the batch name, and checked again wherever a key is turned into a path
(keys can also be added by hand in the UI).
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from typing import Any

from dagster import DynamicPartitionsDefinition

from writer.published import has_dataset
from writer.storage import Storage

raw_batches = DynamicPartitionsDefinition(name="raw_batches")

PARTITIONS_DIR = "partitions"
STAGING_DIR = ".staging"  # starts with '.', so no partition key can be it
_SAFE_KEY = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z")  # \Z: "$" would accept a trailing newline
_UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")
_BATCH_SUFFIXES = (".jsonl.gz", ".jsonl", ".parquet")


def partition_key_for_batch(batch_name: str) -> str:
    """The batch's stem with anything unsafe replaced; a short hash keeps changed names unique."""
    stem = batch_name
    for suffix in _BATCH_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    key = _UNSAFE_CHARACTERS.sub("_", stem).lstrip(".-")[:100] or "batch"
    if key != stem:
        key = f"{key}-{hashlib.sha1(batch_name.encode()).hexdigest()[:8]}"
    return key


def check_partition_key(key: str) -> str:
    if not _SAFE_KEY.match(key):
        raise ValueError(f"unsafe partition key {key!r}: keys are letters, digits, '.', '_' and '-', "
                         "not starting with '.' or '-'")
    return key


def partition_url(out_url: str, key: str) -> str:
    """Where a partition's dataset lives: `<out>/partitions/<key>`, never outside `<out>`."""
    return posixpath.join(out_url.rstrip("/"), PARTITIONS_DIR, check_partition_key(key))


def staging_url(out_url: str, key: str) -> str:
    """Where a partition is built before it replaces `partition_url(out_url, key)`."""
    return posixpath.join(out_url.rstrip("/"), PARTITIONS_DIR, STAGING_DIR, check_partition_key(key))


def stored_partitions(out_url: str, storage_options: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    """What is under `<out>/partitions/`, the one source of truth for what gets published:
    (keys whose dataset is complete, keys whose directory holds no dataset), each sorted.

    A directory without an index is a build that was interrupted (or a dataset removed in
    part); it is reported, never silently left out.
    """
    root = Storage(posixpath.join(out_url.rstrip("/"), PARTITIONS_DIR), storage_options)
    complete, incomplete = [], []
    for name in root.list_names():
        if name == STAGING_DIR or not _SAFE_KEY.match(name):
            continue
        partition = Storage(partition_url(out_url, name), storage_options)
        if has_dataset(partition):
            complete.append(name)
        elif partition.list_names():
            incomplete.append(name)
    return complete, incomplete
