"""The asset checks of the streaming format (MDS v2): the same questions as `checks`, asked of
`index.json` files. Each judges what is in storage; `checks` picks these by the format setting."""

from __future__ import annotations

from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from writer.reference_index import IndexReferenceError, V2Index, first_unstored_file, read_index
from writer.storage import Storage

from .core.generations import published_prefix
from .core.layout import PARTITIONS_DIR, partition_url
from .core.wording import plural
from .keys import MDS_SHARDS, SHARD_SIZE


def _problems(problems: list[str], key: str = "problems") -> dict[str, MetadataValue]:
    return {key: MetadataValue.json(problems)} if problems else {}


def required_index(storage: Storage) -> V2Index:
    """The folder's `index.json`, parsed; FileNotFoundError naming it when there is none."""
    index = read_index(storage)
    if index is None:
        raise FileNotFoundError(f"{storage.describe('index.json')}: no such file")
    return index


def streaming_shard_size_result(
    url: str, shard_size_limit: int, storage_options: dict[str, Any] | None
) -> AssetCheckResult:
    """`shard_size` of a streaming partition: every shard at or under the limit (one oversized
    sample alone in its shard is a WARN naming it) and stored with the size its index gives it."""
    storage = Storage(url, storage_options)
    try:
        index = required_index(storage)
    except (OSError, IndexReferenceError) as error:
        return AssetCheckResult(
            check_name=SHARD_SIZE, passed=False, asset_key=MDS_SHARDS, metadata={"problem": str(error)}
        )
    errors, warnings = [], []
    unstored = first_unstored_file(storage, index)
    if unstored is not None:
        errors.append(f"{unstored} (truncated, replaced or removed)")
    first_sample = 0
    for shard in index.shards:
        name, size, samples = shard["raw_data"]["basename"], shard["raw_data"]["bytes"], shard["samples"]
        if size > shard_size_limit and samples == 1:
            warnings.append(
                f"{name}: sample {first_sample} alone is {size} bytes, over the {shard_size_limit}-byte limit"
            )
        elif size > shard_size_limit and samples > 1:
            errors.append(
                f"{name}: {size} bytes in {plural(samples, 'sample')}, over the {shard_size_limit}-byte limit"
            )
        first_sample += samples
    return AssetCheckResult(
        check_name=SHARD_SIZE,
        asset_key=MDS_SHARDS,
        passed=not errors and not warnings,
        severity=AssetCheckSeverity.ERROR if errors else AssetCheckSeverity.WARN,
        metadata={
            "shards": len(index.shards),
            "largest_shard_bytes": max((shard["raw_data"]["bytes"] for shard in index.shards), default=0),
            "shard_size_limit": shard_size_limit,
            **_problems(errors + warnings),
        },
        description="; ".join(errors + warnings) or None,
    )


def streaming_index_consistency(out_url: str, storage_options: dict[str, Any] | None) -> AssetCheckResult:
    """The published `index.json` reads back, every shard it names is stored with its size, and
    each partition's shards in it are that partition's current ones (sizes, hashes), in order."""
    storage = Storage(out_url, storage_options)
    try:
        published = required_index(storage)
    except (OSError, IndexReferenceError) as error:
        return AssetCheckResult(passed=False, metadata={"problem": str(error)})
    problems: list[str] = []
    unstored = first_unstored_file(storage, published)
    if unstored is not None:
        problems.append(unstored)
    keys, by_key = _shards_by_partition(published, problems)
    for key in keys:
        problems += _compare_with_partition(key, by_key[key], out_url, storage_options)
    if keys != sorted(keys):
        problems.append(f"partitions are published out of key order: {', '.join(keys)}")
    return AssetCheckResult(
        passed=not problems,
        metadata={
            "partitions": len(keys),
            "samples": published.samples,
            "shards": len(published.shards),
            **_problems(problems[:50]),
        },
        description="; ".join(problems[:5]) or None,
    )


def _shards_by_partition(published: V2Index, problems: list[str]) -> tuple[list[str], dict[str, list[dict[str, Any]]]]:
    """The published shards grouped by the partition they are in, partitions in order of appearance;
    a shard outside `partitions/<key>/`, or a partition's shards not contiguous, is a problem."""
    keys: list[str] = []
    by_key: dict[str, list[dict[str, Any]]] = {}
    for number, shard in enumerate(published.shards):
        parts = shard["raw_data"]["basename"].split("/")
        if len(parts) < 3 or parts[0] != PARTITIONS_DIR:
            problems.append(f"shard {number} ({shard['raw_data']['basename']}) is in no partition")
            continue
        key = parts[1]
        if key in by_key and keys[-1] != key:
            problems.append(f"the shards of partition {key} are not contiguous")
        if key not in by_key:
            keys.append(key)
            by_key[key] = []
        by_key[key].append(shard)
    return keys, by_key


def _compare_with_partition(
    key: str, shards: list[dict[str, Any]], out_url: str, storage_options: dict[str, Any] | None
) -> list[str]:
    try:
        own = read_index(Storage(partition_url(out_url, key), storage_options))
    except (OSError, IndexReferenceError, ValueError) as error:
        return [f"partition {key}: {error}"]
    if own is None:
        return [f"partition {key}: its index.json is missing"]
    if own.rebased(published_prefix(key)) != shards:
        return [f"the published shards of partition {key} are not its current ones (rebuilt since publishing?)"]
    return []
