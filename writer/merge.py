"""Publish one dataset made of the shards of several, in order, without re-encoding a sample.

Shards are placed by hard link on a local disk (no bytes copied, and the source datasets stay
whole and valid) or by a server-side copy on an object store (no bytes through this process);
only the index is new.

Validation first: everything that can fail on content — reading every source's index and
manifest, checking they agree on fields and compression, merging the per-sample sizes,
encoding the new index and manifest — runs in `plan_merge`, before the first change to the
target. `apply` then only does storage steps, in an order that keeps the previous dataset
readable as long as possible:

1. shards under names the current index does not use (an appended partition) are placed while
   the previous dataset stays published;
2. the previous index is removed; then the shards under names it used are placed and the new
   files written, the index last;
3. shards the new index does not use are removed after the new index is in place.

A failure at step 1 leaves the previous dataset byte for byte (the new names are removed
again); at step 2 it leaves no index (never an index pointing at wrong shards), and running
the same merge again publishes the new dataset. The error says which step failed and what the
target holds, read back.
"""

from __future__ import annotations

import os
import warnings
from array import array
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from . import format as mds
from .lock import DatasetLock, LockWait
from .manifest import MANIFEST_NAME, Manifest, merge
from .published import DatasetFiles, PublishedState, PublishError, describe_change, read_state, unpublish
from .reader import MDSDataset
from .storage import Storage, is_temporary

SOURCE_THREADS = 16  # sources read at once (object-store latency, not CPU, is what they wait on)


@dataclass(frozen=True)
class MergeResult:
    manifest: Manifest
    changed: bool  # False when the published dataset already was exactly this one
    placement: str  # how shards were placed: "hard link", "server-side copy", ...
    shards_placed: int


class MergeError(ValueError):
    """Sources that cannot form one dataset; the message names the source at fault."""


@dataclass(frozen=True)
class Placement:
    source: Storage
    source_name: str
    name: str  # in the target


@dataclass(frozen=True)
class MergePlan:
    """Everything a merge will write, computed before anything is written."""

    target: Storage
    placements: tuple[Placement, ...]
    files: DatasetFiles
    manifest: Manifest
    before: PublishedState
    before_manifest: Manifest | None  # the published dataset's manifest, when it has one

    @property
    def shard_names(self) -> set[str]:
        return {placement.name for placement in self.placements}


def merge_datasets(
    sources: Sequence[str],
    target: str,
    storage_options: dict[str, Any] | None = None,
    sidecars: Mapping[str, bytes] | None = None,
    lock_wait: LockWait | None = None,
) -> MergeResult:
    """Publish at `target` the samples of `sources`, in that order.

    `sidecars` are extra files (e.g. provenance) published with the index, before it.
    `lock_wait`: how long to wait for a source's or the target's lock while a live process holds
    it (by default such a lock is refused at once). Every merge takes its locks in one order (the
    sources, then the target), so two merges waiting for each other cannot deadlock.
    """
    storage = Storage(target, storage_options)
    with ExitStack() as locks:
        # Every source is locked while it is read and placed: one rebuilt in between would
        # otherwise be published under its old index (its shard files replaced by name). The
        # target is locked (and created) only once the sources proved sound.
        for url in dict.fromkeys(sources):
            locks.enter_context(
                DatasetLock(Storage(url, storage_options), f"a publish (merge) reading it into {target}", lock_wait)
            )
        datasets, manifests = _open_sources(sources, storage_options)
        locks.enter_context(DatasetLock(storage, "a publish (merge) into it", lock_wait))
        plan = plan_merge(datasets, manifests, storage, sidecars or {})
        if _already_published(plan):
            return MergeResult(plan.manifest, changed=False, placement="unchanged", shards_placed=0)
        placements = apply(plan)
    placement = ", ".join(sorted(set(placements))) or "already in place"
    return MergeResult(plan.manifest, changed=True, placement=placement, shards_placed=len(placements))


def _open_sources(
    sources: Sequence[str], storage_options: dict[str, Any] | None
) -> tuple[list[MDSDataset], list[Manifest]]:
    """Every source read (its index, manifest and listing), `SOURCE_THREADS` at a time: on an
    object store each is a few requests that mostly wait, which one source after another would
    make minutes for thousands of partitions. Only reads: every source is locked already. The
    first failure, in source order, is raised."""
    if not sources:
        raise MergeError("nothing to merge: no source datasets")
    with ThreadPoolExecutor(max_workers=max(1, min(SOURCE_THREADS, len(sources)))) as pool:
        opened = list(pool.map(lambda url: _open_source(url, storage_options), sources))
    datasets = [dataset for dataset, _manifest, _sizes in opened]
    manifests = [manifest for _dataset, manifest, _sizes in opened]
    _check_compatible(datasets, manifests)
    for dataset, manifest, sizes in opened:
        _check_shards_stored(dataset, manifest, sizes)
    return datasets, manifests


def _open_source(url: str, storage_options: dict[str, Any] | None) -> tuple[MDSDataset, Manifest, dict[str, int]]:
    dataset = MDSDataset(url, storage_options=storage_options)
    return dataset, _manifest_of(dataset), dataset.storage.sizes()


def _check_shards_stored(dataset: MDSDataset, manifest: Manifest, sizes: dict[str, int]) -> None:
    """Every shard of a source is there with the size its manifest gives it (`sizes`: one
    listing of the source): a publish never starts from a source it could not place whole."""
    for shard in manifest.shards:
        stored = sizes.get(shard.file)
        if stored != shard.stored_bytes:
            state = "is missing" if stored is None else f"holds {stored} bytes, its manifest says {shard.stored_bytes}"
            raise MergeError(
                f"{dataset.storage.describe(shard.file)} {state}: rebuild {dataset.storage.url} before publishing it"
            )


def plan_merge(
    datasets: list[MDSDataset], manifests: list[Manifest], storage: Storage, sidecars: Mapping[str, bytes]
) -> MergePlan:
    """Read and encode everything; change nothing."""
    compression = datasets[0].compression
    sources = [
        (dataset.storage, dataset.shard_file(number))
        for dataset in datasets
        for number in range(dataset.index.num_shards)
    ]
    names = [mds.shard_name(number, compression.suffix) for number in range(len(sources))]
    placements = tuple(Placement(source, source_name, name) for (source, source_name), name in zip(sources, names))
    manifest = merge(manifests, names)
    samples_per_shard = [count for dataset in datasets for count in dataset.index.samples_per_shard]
    bytes_per_shard = [size for dataset in datasets for size in dataset.index.bytes_per_shard]
    index = mds.encode_index(samples_per_shard, bytes_per_shard, merged_sizes(datasets), datasets[0].fields)
    files = DatasetFiles.encode(compression, index, manifest.to_json(), sidecars)
    before = read_state(storage)
    return MergePlan(storage, placements, files, manifest, before, _current_manifest(storage, before))


def apply(plan: MergePlan) -> list[str]:
    """Do the storage steps of a plan (see the module docstring); returns how each shard was placed."""
    storage = plan.target
    existing = storage.list_names()
    in_use = _names_in_use(storage, plan.before)
    in_place = _shards_in_place(plan, existing)
    todo = [p for p in plan.placements if p.name not in in_place]
    fresh = [p for p in todo if p.name not in in_use]
    replacing = [p for p in todo if p.name in in_use]
    how: list[str] = []
    remove_fresh = lambda: _remove_names(storage, [p.name for p in fresh])  # noqa: E731
    _step(
        plan,
        "placing new shards beside the published dataset",
        lambda: _place_all(storage, fresh, how),
        undo=remove_fresh,
    )
    _step(plan, "removing the previous index", lambda: unpublish(storage, existing), undo=remove_fresh)
    _step(plan, "placing shards under names the previous dataset used", lambda: _place_all(storage, replacing, how))
    _step(plan, "writing the new index and manifest", lambda: plan.files.write(storage))
    used = plan.shard_names  # one set: a set per listed file is quadratic in the shards
    stale = [name for name in existing if name not in used and (mds.is_shard_file(name) or is_temporary(name))]
    try:  # the new dataset is published: what is left is tidying, which only warns
        _remove_names(storage, stale)
    except Exception as error:  # e.g. botocore's connection errors, which are not OSError
        warnings.warn(
            f"{storage.url}: could not remove shards the new dataset does not use ({error}); "
            "the next publish removes them",
            stacklevel=2,
        )
    return how


def _step(plan: MergePlan, what: str, action: Callable[[], object], undo: Callable[[], object] | None = None) -> None:
    """Run one storage step; on failure, undo it if it can be, and say what the target holds now."""
    try:
        action()
    except Exception as error:
        if undo is not None:
            try:
                undo()
            except Exception:  # the state read back below says what is left
                pass
        after = read_state(plan.target)
        state = describe_change(plan.target.url, plan.before, after, plan.files)
        raise PublishError(
            getattr(error, "errno", None) or 0,
            f"publishing {plan.target.url} failed while {what}: {error}. Now {state}",
        ) from error


def _place_all(storage: Storage, placements: list[Placement], how: list[str]) -> None:
    for placement in placements:
        how.append(storage.link_or_copy(placement.source, placement.source_name, placement.name))


def _remove_names(storage: Storage, names: list[str]) -> None:
    for name in names:
        storage.remove(name)


def _names_in_use(storage: Storage, before: PublishedState) -> set[str]:
    """The shard names the currently published index refers to (none when there is no index)."""
    if before.index is None:
        return set()
    try:
        current = MDSDataset(storage.url, storage_options=storage.options)
    except (OSError, ValueError):
        return {name for name in storage.list_names() if mds.is_shard_file(name)}  # unreadable: assume all
    return {current.shard_file(number) for number in range(current.index.num_shards)}


def _shards_in_place(plan: MergePlan, existing: list[str]) -> set[str]:
    """Names under which the target already holds the very shard the plan puts there: locally a
    hard link to the source file; elsewhere the published manifest lists the same shard
    (samples, bytes, checksum) under that name and the stored size agrees."""
    storage, present = plan.target, set(existing)
    published = {shard.file: shard for shard in plan.before_manifest.shards} if plan.before_manifest else {}
    wanted = {shard.file: shard for shard in plan.manifest.shards}
    sizes: dict[str, int] | None = None  # the target's, from one listing when first needed (not a request per shard)
    in_place = set()
    for placement in plan.placements:
        if placement.name not in present:
            continue
        if placement.source.is_local and storage.is_local:
            if _same_file(placement.source.path(placement.source_name), storage.path(placement.name)):
                in_place.add(placement.name)
        elif published.get(placement.name) == wanted[placement.name]:
            sizes = storage.sizes() if sizes is None else sizes
            if sizes.get(placement.name) == wanted[placement.name].stored_bytes:
                in_place.add(placement.name)
    return in_place


def _same_file(first: str, second: str) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def _current_manifest(storage: Storage, before: PublishedState) -> Manifest | None:
    if before.index is None or not storage.exists(MANIFEST_NAME):
        return None
    try:
        return Manifest.from_json(storage.read(MANIFEST_NAME), storage.describe(MANIFEST_NAME))
    except ValueError:
        return None


def _manifest_of(dataset: MDSDataset) -> Manifest:
    manifest = dataset.manifest()
    if manifest is None:
        raise MergeError(f"{dataset.storage.url} has no {MANIFEST_NAME}: rewrite it with this writer to merge it")
    return manifest


def _check_compatible(datasets: list[MDSDataset], manifests: list[Manifest]) -> None:
    first, first_manifest = datasets[0], manifests[0]
    for dataset, manifest in zip(datasets[1:], manifests[1:]):
        if dataset.fields != first.fields:
            raise MergeError(
                f"{dataset.storage.url} has fields {list(dataset.fields)}, {first.storage.url} has {list(first.fields)}"
            )
        if manifest.compression != first_manifest.compression:
            raise MergeError(
                f"{dataset.storage.url} is compressed {manifest.compression}, "
                f"{first.storage.url} {first_manifest.compression}"
            )
    _check_encodings(datasets, manifests)


def _check_encodings(datasets: list[MDSDataset], manifests: list[Manifest]) -> None:
    """Sources that record column encodings must agree; one that records none (written before
    encodings were recorded) takes the others'."""
    known = [(dataset, manifest) for dataset, manifest in zip(datasets, manifests) if manifest.column_encodings]
    for dataset, manifest in known[1:]:
        if manifest.column_encodings != known[0][1].column_encodings:
            raise MergeError(
                f"{dataset.storage.url} has column encodings {dict(manifest.column_encodings)}, "
                f"{known[0][0].storage.url} {dict(known[0][1].column_encodings)}"
            )


def _already_published(plan: MergePlan) -> bool:
    """True when the target already holds exactly this dataset, every shard and sidecar in place."""
    storage, files = plan.target, plan.files
    current = plan.before_manifest
    if plan.before.index != files.index or current is None:
        return False
    if _essentials(current) != _essentials(plan.manifest):
        return False
    sizes = storage.sizes()  # one listing, not a request per shard
    if any(name not in sizes or storage.read(name) != data for name, data in files.sidecars.items()):
        return False
    return all(sizes.get(shard.file) == shard.stored_bytes for shard in plan.manifest.shards)


def _essentials(manifest: Manifest) -> tuple[object, ...]:
    """What makes two manifests describe the same dataset (their writer version may differ)."""
    return manifest.fields, manifest.compression, manifest.shards, dict(manifest.column_encodings)


def merged_sizes(datasets: Sequence[MDSDataset]) -> array[int]:
    """Every per-sample size, in one array of the narrowest signed type that holds the largest.

    The sources may store their sizes in any width (int8, int16, int32, int64 or one constant);
    `array.extend` only takes an array of its own type, so each is converted on the way in.
    """
    largest = max((max(dataset.sample_sizes) for dataset in datasets if len(dataset)), default=0)
    merged = array(mds.SIZE_TYPECODES[mds.narrowest_size_format(largest)])
    for dataset in datasets:
        sizes = dataset.sample_sizes
        if isinstance(sizes, array) and sizes.typecode == merged.typecode:
            merged.extend(sizes)
        else:
            merged.extend(array(merged.typecode, sizes))
    return merged
