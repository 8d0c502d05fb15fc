"""An MDS v2 dataset published by reference: one `index.json` over shards stored below it.

mosaicml-streaming's `index.json` lists each shard with its basename — a path relative to the
folder of the index — with its sizes and hashes. So a dataset made of several datasets stored
under it needs no shard placed anywhere: its index names their shards where they are
(`partitions/a/shard.00000.mds`), as mosaicml-streaming's own `merge_index` does. Publishing is
writing that one small file, on local disks and object stores alike:

* every source's `index.json` is read and checked (MDS v2, the same columns and compression;
  no basename that climbs out of its folder), and every shard file it names is stored with the
  size the index gives it (one listing per folder of shards) — all before anything is written;
* the new index is written in one atomic step (a rename locally, one PUT on object stores): a
  reader sees the previous index or the new one, and a failure leaves the previous one, byte
  for byte. An index equal to the one published is not written again.

Nothing here removes a shard: which files no index refers to any more is the caller's to know
(it knows which other indexes point into the same folders). Time and memory are linear in
shards, independent of samples: an MDS v2 index holds no per-sample sizes.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from . import mdsv2_format as v2
from .lock import DatasetLock, LockWait
from .manifest import Manifest, ShardRecord
from .published import PublishedState, PublishError, read_state
from .storage import Storage

INDEX_JSON = "index.json"
SOURCE_THREADS = 16  # sources locked and read at once (object-store latency, not CPU, is what they wait on)
SHARD_FILE_KEYS = ("raw_data", "zip_data", "raw_meta", "zip_meta")  # S's FileInfo entries of a shard
_SAME_IN_EVERY_SHARD = ("format", "column_names", "column_encodings", "compression")


class IndexReferenceError(ValueError):
    """Sources that cannot be published by reference; the message names the source and shard at fault."""


@dataclass(frozen=True)
class V2Index:
    """One `index.json`, parsed and checked: its shards as mosaicml-streaming writes them."""

    shards: tuple[dict[str, Any], ...]

    @classmethod
    def parse(cls, data: bytes, where: str) -> V2Index:
        """Checked by the reader's own rules (`mdsv2_format.decode_index`: shard entries, safe
        basenames, one set of columns); the shards are kept as written, every key, so that an
        index by reference repeats them exactly."""
        try:
            v2.decode_index(data, where)
        except v2.FormatError as error:
            raise IndexReferenceError(str(error)) from None
        return cls(tuple(json.loads(data)["shards"]))

    @property
    def samples(self) -> int:
        return sum(int(shard["samples"]) for shard in self.shards)

    def stored_files(self) -> list[tuple[str, int]]:
        """(basename, size on storage) of each shard's stored file: the compressed one when the
        shard is compressed (mosaicml-streaming stores only that), else the raw one."""
        return [_stored_file(shard) for shard in self.shards]

    def basenames(self) -> set[str]:
        """Every file any shard of this index names (raw and compressed)."""
        return {shard[key]["basename"] for shard in self.shards for key in SHARD_FILE_KEYS if shard.get(key)}

    def rebased(self, prefix: str) -> list[dict[str, Any]]:
        """The shards with every basename under `prefix` (a relative folder), nothing else changed."""
        if not prefix:
            return [dict(shard) for shard in self.shards]
        return [
            {
                **shard,
                **{
                    key: {**shard[key], "basename": posixpath.join(prefix, shard[key]["basename"])}
                    for key in SHARD_FILE_KEYS
                    if shard.get(key)
                },
            }
            for shard in self.shards
        ]


def _stored_file(shard: Mapping[str, Any]) -> tuple[str, int]:
    info = shard.get("zip_data") or shard["raw_data"]
    return info["basename"], info["bytes"]


def read_index(storage: Storage) -> V2Index | None:
    """The folder's `index.json`, parsed; None when it has none."""
    try:
        data = storage.read(INDEX_JSON)
    except FileNotFoundError:
        return None
    return V2Index.parse(data, storage.describe(INDEX_JSON))


def relative_prefix(source: Storage, target: Storage) -> str:
    """Where `source` lies under `target`, as a relative folder ('' for the target itself)."""
    if type(source.fs) is not type(target.fs) or not (
        source.root == target.root or source.root.startswith(target.root.rstrip("/") + "/")
    ):
        raise IndexReferenceError(
            f"{source.url} is not under {target.url}: an index refers only to shards below its own folder"
        )
    return str(source.root)[len(target.root) :].strip("/")


@dataclass(frozen=True)
class ReferencePublish:
    """What a publish by reference did: the index now published and the one it replaced."""

    index: V2Index
    previous: V2Index | None
    changed: bool
    sources: tuple[tuple[str, V2Index], ...]  # (prefix under the target, that source's own index)


def publish_by_reference(
    sources: Sequence[str],
    target: str,
    storage_options: dict[str, Any] | None = None,
    lock_wait: LockWait | None = None,
) -> ReferencePublish:
    """Publish at `target` one `index.json` over the shards of `sources` (folders under it, each
    holding an MDS v2 `index.json`), in that order. Every source and the target are locked
    meanwhile, so no source is rebuilt, and no other publish writes the target, in between
    (`lock_wait`: how long to wait for a lock a live process holds, as `merge_datasets`)."""
    storage = Storage(target, storage_options)
    with ExitStack() as locks:
        opened = _lock_and_open_all(sources, storage, locks, lock_wait)
        _check_compatible(opened)
        shards = [shard for prefix, index in opened for shard in index.rebased(prefix)]
        data = v2.encode_index(shards)
        published = V2Index(tuple(shards))
        locks.enter_context(DatasetLock(storage, "a publish by reference into it", lock_wait))
        before = read_state(storage)
        previous = _previous_index(storage, before)
        if before.index == data:
            return ReferencePublish(published, previous, changed=False, sources=tuple(opened))
        try:
            storage.write_atomic(INDEX_JSON, data)
        except Exception as error:
            raise PublishError(
                getattr(error, "errno", None) or 0,
                f"publishing {storage.url} failed while writing {INDEX_JSON}: {error}. "
                f"Now {describe_after_failure(storage, before, data)}",
            ) from error
    return ReferencePublish(published, previous, changed=True, sources=tuple(opened))


def _lock_and_open_all(
    sources: Sequence[str], target: Storage, locks: ExitStack, lock_wait: LockWait | None = None
) -> list[tuple[str, V2Index]]:
    """Lock and read every source, `SOURCE_THREADS` at a time: on an object store each source
    is a few requests' latency (lock, index, listing), which one after another would make a
    publish of 10,000 partitions take most of an hour. Every lock taken is released when
    `locks` closes (also in threads); the first failure, in source order, is raised once every
    source was tried, so no lock is left behind."""
    urls = list(dict.fromkeys(sources))
    taken: list[DatasetLock] = []
    locks.callback(_release_all, taken)
    with ThreadPoolExecutor(max_workers=max(1, min(SOURCE_THREADS, len(urls)))) as pool:
        futures = [pool.submit(_lock_and_open, Storage(url, target.options), target, lock_wait) for url in urls]
    opened: dict[str, tuple[str, V2Index]] = {}
    failure: BaseException | None = None
    for url, future in zip(urls, futures):
        error = future.exception()
        if error is not None:
            failure = failure or error
            continue
        lock, result = future.result()
        taken.append(lock)
        opened[url] = result
    if failure is not None:
        raise failure
    return [opened[url] for url in sources]


def _lock_and_open(
    source: Storage, target: Storage, lock_wait: LockWait | None
) -> tuple[DatasetLock, tuple[str, V2Index]]:
    lock = DatasetLock(source, f"a publish by reference into {target.url}", lock_wait)
    lock.acquire()
    try:
        return lock, _open_source(source, target)
    except BaseException:
        lock.release()
        raise


def _release_all(taken: list[DatasetLock]) -> None:
    if len(taken) <= 1:
        for lock in taken:
            lock.release()
        return
    with ThreadPoolExecutor(max_workers=min(SOURCE_THREADS, len(taken))) as pool:
        list(pool.map(DatasetLock.release, taken))


def _open_source(source: Storage, target: Storage) -> tuple[str, V2Index]:
    prefix = relative_prefix(source, target)
    index = read_index(source)
    if index is None:
        raise IndexReferenceError(f"{source.describe(INDEX_JSON)} is missing: {source.url} holds no MDS v2 dataset")
    _check_stored(source, index)
    return prefix, index


def _check_stored(source: Storage, index: V2Index) -> None:
    problem = first_unstored_file(source, index)
    if problem is not None:
        raise IndexReferenceError(f"{problem}: rebuild {source.url} before publishing it")


def stored_files_present(storage: Storage, index: V2Index) -> bool:
    """Every shard file the index names is stored with the size the index gives it."""
    return first_unstored_file(storage, index) is None


def first_unstored_file(storage: Storage, index: V2Index) -> str | None:
    """The first shard file the index names that is missing or of another size, described; None
    when every one is stored whole. One listing per folder of shards."""
    listings: dict[str, dict[str, int]] = {}
    for basename, size in index.stored_files():
        folder, name = posixpath.split(basename)
        if folder not in listings:
            listings[folder] = Storage(posixpath.join(storage.url.rstrip("/"), folder), storage.options).sizes()
        stored = listings[folder].get(name)
        if stored != size:
            state = "is missing" if stored is None else f"holds {stored} bytes, its index says {size}"
            return f"{storage.describe(basename)} {state}"
    return None


def _check_compatible(opened: Sequence[tuple[str, V2Index]]) -> None:
    """Every shard of every source has the same format, columns and compression as the first."""
    first: tuple[str, dict[str, Any]] | None = None
    for prefix, index in opened:
        for number, shard in enumerate(index.shards):
            if first is None:
                first = (prefix, shard)
                continue
            for key in _SAME_IN_EVERY_SHARD:
                if shard.get(key) != first[1].get(key):
                    raise IndexReferenceError(
                        f"shard {number} of {prefix or 'the target'} has {key} {shard.get(key)!r}, the first shard "
                        f"(of {first[0] or 'the target'}) {first[1].get(key)!r}: one dataset has one {key}"
                    )


def _previous_index(storage: Storage, before: PublishedState) -> V2Index | None:
    """The index being replaced, when it is an MDS v2 one that parses (else nothing is known of it)."""
    if before.index is None:
        return None
    try:
        return V2Index.parse(before.index, storage.describe(INDEX_JSON))
    except IndexReferenceError:
        return None


def describe_after_failure(storage: Storage, before: PublishedState, new_index: bytes) -> str:
    """What the target holds after a failed write of `new_index`, read back."""
    after = read_state(storage)
    url = storage.url
    if after.unreadable is not None:
        return f"what {url} holds could not be read back ({after.unreadable}); check it once its storage answers"
    if after.index is None and before.index is None:
        return f"{url} held no dataset and still holds none"
    if after.index == before.index:
        return f"the dataset at {url} is unchanged ({before.describe()})"
    if after.index == new_index:
        return f"the dataset at {url} is the new one ({after.describe()})"
    return f"{url} holds {after.describe()}, which is neither the previous nor the new dataset"


def summary_manifest(index: V2Index, fields: Sequence[str] = ()) -> Manifest:
    """The index as a `Manifest` (each shard's samples, sizes and first hash), so what reports on
    shards — asset metadata, the shard table — speaks of both formats the same way. `fields`:
    the columns to report when the index has no shard to tell them."""
    first = index.shards[0] if index.shards else {}
    algorithm = (first.get("hashes") or [""])[0]
    shards = tuple(
        ShardRecord(
            file=_stored_file(shard)[0],
            samples=int(shard["samples"]),
            bytes=int(shard["raw_data"]["bytes"]),
            stored_bytes=_stored_file(shard)[1],
            checksum=str((shard.get("zip_data") or shard["raw_data"]).get("hashes", {}).get(algorithm, "")),
        )
        for shard in index.shards
    )
    return Manifest(
        fields=tuple(first.get("column_names") or fields),
        shard_size_limit=first.get("size_limit"),
        compression=first.get("compression"),
        shards=shards,
        checksum_algorithm=algorithm or "none",
        writer="mosaicml-streaming MDS v2",
        writer_version="2",
        column_encodings=dict(zip(first.get("column_names") or (), first.get("column_encodings") or ())),
    )
