"""The published dataset: which files make a directory a dataset, and how they are replaced.

A directory holds a dataset exactly when its index exists; the index is always written last
and removed first. Everything else here follows from that rule:

* `DatasetFiles` holds every byte of the non-shard files (index, manifest, `compression.txt`,
  sidecars), encoded *before* the first change to storage, so nothing that can fail on content
  runs once the published dataset is being changed.
* `read_state` / `describe_change` read back what a directory holds after a failure, so a
  message says what is there ("unchanged" only when the index read back is the previous one).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from . import format as mds
from .compression import COMPRESSION_FILE, SUFFIXES, Compression, scheme_from_file
from .manifest import MANIFEST_NAME
from .storage import Storage

V2_INDEX_NAME = "index.json"  # mosaicml-streaming's MDS v2 index (see reference_index.py)
INDEX_NAMES = (*(mds.INDEX_NAME + suffix for suffix in SUFFIXES), V2_INDEX_NAME)


def index_name(compression: Compression) -> str:
    return mds.INDEX_NAME + compression.suffix


def published_index_names() -> tuple[str, ...]:
    """Every name an index may have: its presence is what makes a directory a dataset."""
    return INDEX_NAMES


def has_dataset(storage: Storage, names: Sequence[str] | None = None) -> bool:
    """`names`: the folder's listing when the caller already has it."""
    listed = storage.list_names() if names is None else names
    return any(name in listed for name in INDEX_NAMES)


class PublishError(OSError):
    """A storage step of publishing failed; the message says which, and what the directory holds now."""


@dataclass(frozen=True)
class DatasetFiles:
    """The non-shard files of one dataset, fully encoded: writing them cannot fail on content."""

    compression: Compression
    index: bytes  # as stored (compressed when the dataset is)
    manifest: bytes
    sidecars: Mapping[str, bytes] = field(default_factory=dict)

    @classmethod
    def encode(
        cls, compression: Compression, index: bytes, manifest: bytes, sidecars: Mapping[str, bytes] | None = None
    ) -> DatasetFiles:
        stored_index = compression.compress(index)
        return cls(compression, stored_index, manifest, dict(sidecars or {}))

    @property
    def index_name(self) -> str:
        return index_name(self.compression)

    def write(self, storage: Storage) -> None:
        """Write every file, the index last (it publishes). On failure, remove what this wrote,
        so a directory never holds a new manifest or `compression.txt` beside no index."""
        written: list[str] = []
        try:
            if self.compression.is_none:
                storage.remove(COMPRESSION_FILE)
            else:
                _write(storage, COMPRESSION_FILE, f"{self.compression.scheme}\n".encode(), written)
            for name, data in self.sidecars.items():
                _write(storage, name, data, written)
            _write(storage, MANIFEST_NAME, self.manifest, written)
            _write(storage, self.index_name, self.index, written)
        except BaseException:
            for name in written:
                _remove_quietly(storage, name)
            raise


def _write(storage: Storage, name: str, data: bytes, written: list[str]) -> None:
    written.append(name)
    try:
        storage.write_atomic(name, data)
    except OSError as error:
        raise PublishError(error.errno, f"could not write {storage.describe(name)}: {error}") from error


def _remove_quietly(storage: Storage, name: str) -> None:
    try:
        storage.remove(name)
    except Exception:  # best effort: the storage may be what failed
        pass


def publish(storage: Storage, files: DatasetFiles) -> None:
    """Write a dataset's files into a directory whose shards are already stored."""
    files.write(storage)


def unpublish(storage: Storage, names: Sequence[str]) -> None:
    """Remove the index: from here on the directory holds no dataset (its other files are
    overwritten by the next publish)."""
    for name in INDEX_NAMES:
        if name in names:
            storage.remove(name)


@dataclass(frozen=True)
class PublishedState:
    """What a directory holds, read back: its index and manifest bytes (index None: no dataset)."""

    index: bytes | None
    manifest: bytes | None = None
    samples: int | None = None
    unreadable: str | None = None  # why it could not be read back (then nothing is known of it)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.index).hexdigest()[:12] if self.index is not None else "none"

    def is_files(self, files: DatasetFiles) -> bool:
        """Exactly these index and manifest (the manifest carries every shard's checksum)."""
        return self.index == files.index and self.manifest == files.manifest

    def describe(self) -> str:
        if self.unreadable is not None:
            return f"unknown: it could not be read back ({self.unreadable})"
        if self.index is None:
            return "no index: it holds no dataset"
        return f"a dataset of {self.samples} samples (index {self.digest})"


def read_state(storage: Storage) -> PublishedState:
    """The index and manifest as stored now. Never raises: a folder that cannot be read is
    reported as such, never guessed to hold nothing."""
    try:
        names = storage.list_names()
        name = next((n for n in INDEX_NAMES if n in names), None)
        if name is None:
            return PublishedState(None)
        data = storage.read(name)
        manifest = storage.read(MANIFEST_NAME) if MANIFEST_NAME in names else None
    except Exception as error:  # e.g. botocore's connection errors, which are not OSError
        return PublishedState(None, unreadable=f"{type(error).__name__}: {error}")
    return PublishedState(data, manifest, _sample_count(data, name))


def _sample_count(data: bytes, name: str) -> int | None:
    try:
        if name == V2_INDEX_NAME:
            return sum(int(shard["samples"]) for shard in json.loads(data)["shards"])
        if name == mds.INDEX_NAME:
            return mds.decode_index(data, name).total_samples
        with scheme_from_file(name.rsplit(".", 1)[1], name).open_stream(data) as stream:
            return mds.decode_index(stream, name).total_samples
    except Exception:  # a count is only for the message
        return None


def describe_change(url: str, before: PublishedState, after: PublishedState, new: DatasetFiles | None) -> str:
    """One sentence on what `url` holds now, compared with before and with what was being
    published (`new`; None when the caller does not know it)."""
    if after.unreadable is not None:
        return (
            f"what {url} holds could not be read back ({after.unreadable}); "
            f"check it with `mds verify {url}` once its storage answers"
        )
    if after.index is not None and (after.index, after.manifest) == (before.index, before.manifest):
        return f"the dataset at {url} is unchanged ({before.describe()})"
    if after.index is not None and new is not None and after.is_files(new):
        return f"the dataset at {url} is the new one ({after.describe()})"
    if after.index is None and before.index is None:
        return f"{url} held no dataset and still holds none"
    if after.index is None:
        return (
            f"{url} holds no dataset: its index was removed before the failure (the previous one was "
            f"{before.describe()}); running the same operation again restores a complete dataset"
        )
    if new is None:
        return f"{url} holds {after.describe()}, changed by this run (see the error above)"
    return f"{url} holds {after.describe()}, which is neither the previous nor the new dataset"
