"""Publish one dataset made of the shards of several, in order, without re-encoding a sample.

Shards are placed by hard link on a local disk (no bytes copied, and the source datasets stay
whole and valid) or by a server-side copy on an object store (no bytes through this process);
only the index is new. Publishing is crash-safe like the writer: the old index is removed
before any shard name is reused and the new index is written last, so a crash leaves the
previous dataset, the new one, or no index — and running the merge again repairs it.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import format as mds
from .compression import parse_compression
from .manifest import MANIFEST_NAME, Manifest, merge
from .reader import MDSDataset
from .storage import Storage, is_temporary
from .writer import index_name, publish, unpublish



@dataclass(frozen=True)
class MergeResult:
    manifest: Manifest
    changed: bool  # False when the published dataset already was exactly this one
    placement: str  # how shards were placed: "hard link", "server-side copy", ...
    shards_placed: int


class MergeError(ValueError):
    """Sources that cannot form one dataset; the message names the source at fault."""


def merge_datasets(
    sources: Sequence[str],
    target: str,
    storage_options: dict[str, Any] | None = None,
    sidecars: Mapping[str, bytes] | None = None,
) -> MergeResult:
    """Publish at `target` the samples of `sources`, in that order.

    `sidecars` are extra files (e.g. provenance) published with the index, before it.
    """
    if not sources:
        raise MergeError("nothing to merge: no source datasets")
    datasets = [MDSDataset(url, storage_options=storage_options) for url in sources]
    manifests = [_manifest_of(dataset) for dataset in datasets]
    _check_compatible(datasets, manifests)
    storage = Storage(target, storage_options)
    suffix = datasets[0].compression.suffix if datasets[0].compression else ""
    plan = [(dataset, dataset.shard_file(number)) for dataset in datasets for number in range(dataset.index.num_shards)]
    names = [mds.shard_name(number, suffix) for number in range(len(plan))]
    manifest = merge(manifests, names)
    if _already_published(storage, manifest, sidecars or {}):
        return MergeResult(manifest, changed=False, placement="unchanged", shards_placed=0)

    storage.make_root()
    existing = storage.list_names()
    unpublish(storage, existing, sidecars=list(sidecars or {}))
    placements = set()
    placed = 0
    for (dataset, source_name), name in zip(plan, names):
        if _same_file(dataset.storage, source_name, storage, name):
            continue
        placements.add(storage.link_or_copy(dataset.storage, source_name, name))
        placed += 1
    for name in set(existing) - set(names):
        if mds.is_shard_file(name) or is_temporary(name):
            storage.remove(name)
    _publish_index(storage, datasets, manifest, sidecars)
    placement = ", ".join(sorted(placements)) or "already in place"
    return MergeResult(manifest, changed=True, placement=placement, shards_placed=placed)


def _manifest_of(dataset: MDSDataset) -> Manifest:
    manifest = dataset.manifest()
    if manifest is None:
        raise MergeError(f"{dataset.storage.url} has no {MANIFEST_NAME}: rewrite it with this writer to merge it")
    return manifest


def _check_compatible(datasets: list[MDSDataset], manifests: list[Manifest]) -> None:
    first, first_manifest = datasets[0], manifests[0]
    for dataset, manifest in zip(datasets[1:], manifests[1:]):
        if dataset.fields != first.fields:
            raise MergeError(f"{dataset.storage.url} has fields {list(dataset.fields)}, "
                             f"{first.storage.url} has {list(first.fields)}")
        if manifest.compression != first_manifest.compression:
            raise MergeError(f"{dataset.storage.url} is compressed {manifest.compression}, "
                             f"{first.storage.url} {first_manifest.compression}")


def _already_published(storage: Storage, manifest: Manifest, sidecars: Mapping[str, bytes]) -> bool:
    """True when `target` already holds exactly this dataset, every shard and sidecar in place."""
    compression = parse_compression(manifest.compression)
    if not storage.exists(index_name(compression)) or not storage.exists(MANIFEST_NAME):
        return False
    try:
        current = Manifest.from_json(storage.read(MANIFEST_NAME), storage.describe(MANIFEST_NAME))
    except ValueError:
        return False
    if (current.fields, current.compression, current.shards) != (manifest.fields, manifest.compression,
                                                                  manifest.shards):
        return False
    if any(not storage.exists(name) or storage.read(name) != data for name, data in sidecars.items()):
        return False
    return all(storage.exists(shard.file) and storage.size(shard.file) == shard.stored_bytes
               for shard in manifest.shards)


def _same_file(source: Storage, source_name: str, target: Storage, name: str) -> bool:
    """A hard link already in place (local disks only; elsewhere nothing is assumed)."""
    if not (source.is_local and target.is_local):
        return False
    try:
        return os.path.samefile(source.path(source_name), target.path(name))
    except OSError:
        return False


def _publish_index(storage: Storage, datasets: list[MDSDataset], manifest: Manifest,
                   sidecars: Mapping[str, bytes] | None) -> None:
    samples_per_shard = [count for dataset in datasets for count in dataset.index.samples_per_shard]
    bytes_per_shard = [size for dataset in datasets for size in dataset.index.bytes_per_shard]
    index = mds.encode_index(samples_per_shard, bytes_per_shard, _merged_sizes(datasets), datasets[0].fields)
    publish(storage, datasets[0].compression, manifest, index, sidecars)


def _merged_sizes(datasets: list[MDSDataset]) -> array:
    """All per-sample sizes in one array of the narrowest type that holds them."""
    largest = max((max(dataset.sample_sizes) for dataset in datasets if len(dataset)), default=0)
    merged = array(mds.SIZE_TYPECODES[mds.narrowest_size_format(largest)])
    for dataset in datasets:
        sizes = dataset.sample_sizes
        merged.extend(sizes)
    return merged
