"""`StreamingDatasetWriter`: samples in, a published `.mds` dataset out.

The writer keeps one shard in memory, hands finished shards to a background pipeline and
publishes the dataset by writing its index last. Until that index exists the directory holds
no dataset, so a crash, a bad sample or an exception in the `with` block can never publish a
partial one.
"""

from __future__ import annotations

import linecache
import os
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from tqdm.auto import tqdm

from . import format as mds
from .column_encodings import checked_encodings
from .compression import parse_compression
from .lifecycle import FinishOnExit, discard_written, raise_if_unusable, remove_temporaries
from .lock import DatasetLock, LockWait
from .manifest import Manifest, ShardRecord
from .published import DatasetFiles, published_index_names, unpublish
from .shard_pipeline import ShardPipeline
from .storage import Storage, WriterStorageError

DEFAULT_SHARD_SIZE_LIMIT = 1 << 24
# Default background threads: 2 keep compression and storage off the encoding thread; past 4 a
# writer gains little (the encoding thread is the bound) and each thread holds up to a shard
# (16 MiB by default) in flight, so a 64-core machine would hold ~1 GiB for nothing.
MAX_DEFAULT_WORKERS = 4
_BYTES_LIKE = (bytes, bytearray, memoryview)


class StreamingDatasetWriter(FinishOnExit):
    """Write samples (`{field: bytes}`) into a Composer-compatible `.mds` dataset at any fsspec URL.

    Arguments:
        dirname: the dataset's folder, a local path or any fsspec URL (`s3://`, `memory://`, ...).
        fields: the field names, unique, in the order each sample stores them.
        shard_size_limit: the most uncompressed bytes a shard holds (default 16 MiB); a sample
            larger than this goes alone into a shard of its own.
        compression: `None`, `"gz"` (level 6) or `"gz:0"` ... `"gz:9"`.
        storage_options: passed to fsspec (endpoint, profile, ...); credentials belong in the
            environment, where fsspec's backends read them.
        overwrite: replace a dataset already at `dirname` (its index is removed first, its stale
            files at `finish()`); without it, an existing index raises `FileExistsError`.
        workers: threads that join, compress, checksum and store finished shards (default
            `min(4, max(2, cpu_count))`); memory holds one shard being filled plus `workers + 1`.
        column_encodings: what each field's bytes are (`{"uid": "str", "n": "int64"}`, MDS v2's
            names), recorded in the manifest so `MDSDataset(url, decoders="auto")` decodes them.
        lock_wait: how long to wait for the folder's lock while a live process holds it, saying
            what it waits for (`writer.lock.LockWait`); by default such a lock is refused at once.

    The constructor checks every argument before creating anything, then takes the folder's
    lock (`DatasetLockedError` while another writer or publish holds it). After `finish()`:
    `samples_per_shard`, `bytes_per_shard`, `total_samples` and `manifest` describe what was
    published. Use it as a context manager: a clean exit finishes, an exception publishes
    nothing. A storage failure raises `WriterStorageError` whenever it is seen.
    """

    def __init__(
        self,
        dirname: str,
        fields: Sequence[str],
        shard_size_limit: int = DEFAULT_SHARD_SIZE_LIMIT,
        compression: str | None = None,
        *,
        storage_options: dict[str, Any] | None = None,
        overwrite: bool = False,
        workers: int | None = None,
        column_encodings: Mapping[str, str] | None = None,
        lock_wait: LockWait | None = None,
    ) -> None:
        self.fields = _checked_fields(fields)
        self.column_encodings = checked_encodings(column_encodings, self.fields)
        self.shard_size_limit = _checked_limit(shard_size_limit)
        self.compression = parse_compression(compression)
        self.workers = _checked_workers(workers)
        self._storage = Storage(dirname, storage_options)
        self._lock = DatasetLock(self._storage, "a StreamingDatasetWriter")
        if lock_wait is None:
            self._lock.acquire()
        else:
            self._lock.acquire_waiting(lock_wait)
        try:
            self._stale_shards = _prepare_directory(self._storage, overwrite)
        except BaseException:
            self._lock.release()
            raise
        self._pipeline = ShardPipeline(self._storage, self.compression, self.workers, self._record_failure)
        self._header = mds.record_header(len(self.fields))
        self._write_loop = _sample_loop(len(self.fields))
        self._shard: list[bytes] = []  # the current shard's pieces: a size header, then values, per sample
        self._shard_bytes = 0
        self._shard_start = 0  # the number of the current shard's first sample
        self._sample_sizes = array("H")  # every record's size, for the index; widened to "q" past 64 KiB
        self._problem: BaseException | None = None
        self._finished = False
        self.samples_per_shard: list[int] = []
        self.bytes_per_shard: list[int] = []
        self.manifest: Manifest | None = None  # what was published, once finish() returns

    @property
    def total_samples(self) -> int:
        return len(self._sample_sizes)

    @property
    def dirname(self) -> str:
        return self._storage.url

    # -- writing -------------------------------------------------------------------------

    def write_sample(self, sample: Mapping[str, bytes]) -> None:
        """Add one sample; keys beyond `fields` are ignored. A bad sample changes nothing."""
        self._write((sample,))

    def write_samples(
        self, samples: Iterable[Mapping[str, bytes]], use_tqdm: bool = True, total: int | None = None
    ) -> None:
        """Add every sample of an iterable (streamed: it may be a generator of any length).

        Same semantics as `write_sample` on each: a bad sample raises naming its number and
        field, and every sample before it stays written."""
        if use_tqdm:
            samples = tqdm(samples, total=total, unit="sample", desc="writing")
        self._write(samples)

    def _write(self, samples: Iterable[Mapping[str, bytes]]) -> None:
        if self._problem is not None or self._finished:
            self._raise_if_unusable()
        self._write_loop(self, samples, self.fields, self._header, self.shard_size_limit)

    def _as_bytes(self, sample: Any, values: tuple[Any, ...]) -> tuple[tuple[bytes, ...], tuple[int, ...]]:
        """Slow path: copy bytearray/memoryview values (the caller may reuse them), refuse the rest."""
        if not all(isinstance(value, _BYTES_LIKE) for value in values):
            raise self._bad_sample(sample, TypeError())
        copied = tuple(bytes(value) for value in values)
        return copied, tuple(map(len, copied))

    def _bad_sample(self, sample: Any, error: Exception) -> Exception:
        return _explain_bad_sample(sample, self.fields, self.total_samples, error)

    def _flush_shard(self) -> None:
        """Hand the current shard to the pipeline."""
        if self._problem is not None:  # a background failure: stop before queueing more
            self._raise_if_unusable()
        samples = len(self._sample_sizes) - self._shard_start
        self._pipeline.submit(len(self.samples_per_shard), self._shard, samples)
        self.samples_per_shard.append(samples)
        self.bytes_per_shard.append(self._shard_bytes)
        self._shard = []
        self._shard_bytes = 0
        self._shard_start = len(self._sample_sizes)

    def _widen_sizes(self) -> Callable[[int], None]:
        """A record past 64 KiB: the index's sizes become int64 (once). Returns the new append."""
        self._sample_sizes = array("q", self._sample_sizes)
        return self._sample_sizes.append

    # -- publishing ----------------------------------------------------------------------

    def finish(self) -> None:
        """Flush the last shard, wait for every shard to be stored, then publish the index last."""
        if self._finished:
            self._raise_if_unusable()  # finished or failed before: nothing of ours to discard any more
        self._finished = True
        try:
            if self._problem is not None:  # a background failure since the last write_sample
                self._raise_if_unusable()
            if self._shard_bytes:
                self._flush_shard()
            records = self._pipeline.drain()
            self._publish(records)
        except BaseException:
            self._discard_written()
            raise
        self._lock.release()

    def _publish(self, records: list[ShardRecord]) -> None:
        """Encode every file first (content errors change nothing), then store them, index last."""
        manifest = Manifest(
            self.fields,
            self.shard_size_limit,
            self.compression.setting,
            tuple(records),
            column_encodings=self.column_encodings,
        )
        index = mds.encode_index(self.samples_per_shard, self.bytes_per_shard, self._sample_sizes, self.fields)
        files = DatasetFiles.encode(self.compression, index, manifest.to_json())
        try:
            for name in self._stale_shards - {shard.file for shard in manifest.shards}:
                self._storage.remove(name)
            files.write(self._storage)
        except Exception as error:  # e.g. botocore's connection errors, which are not OSError
            raise WriterStorageError(f"could not publish {self.dirname}: {error}") from error
        self.manifest = manifest

    def abort(self) -> None:
        """Give up: publish nothing and remove every file this writer wrote."""
        if self._finished:
            return
        self._finished = True
        self._discard_written()

    def _discard_written(self) -> None:
        discard_written(self._pipeline, self._storage, self._lock)

    # -- state ---------------------------------------------------------------------------

    def _record_failure(self, error: BaseException) -> None:
        if self._problem is None:
            self._problem = error

    def _raise_if_unusable(self) -> None:
        raise_if_unusable(self._problem, self._finished, self.dirname, "writer")


SMALL_RECORD = 512  # records under this are joined into one object as they are written

_LOOP_TEMPLATE = """
def write_loop(self, samples, fields, header, limit):
    {fields} = fields
    pack = header.pack
    join = b"".join
    pieces = self._shard
    add_piece = pieces.append
    add_size = self._sample_sizes.append
    shard_bytes = self._shard_bytes
    try:
        for sample in samples:
            try:
                {take}
            except Exception as error:
                raise self._bad_sample(sample, error) from None
            if {all_bytes}:
                {measure}
            else:
                ({values}), ({sizes}) = self._as_bytes(sample, ({values}))
            record = {record}
            if shard_bytes + record > limit and shard_bytes:  # never an empty shard
                self._shard_bytes = shard_bytes
                self._flush_shard()
                pieces = self._shard
                add_piece = pieces.append
                shard_bytes = 0
            try:
                add_size(record)
            except OverflowError:
                add_size = self._widen_sizes()
                add_size(record)
            if record < SMALL_RECORD:  # one object, not 1 + fields: the shard's join chases fewer pointers
                add_piece(join((pack({sizes}), {values})))
            else:  # kept by reference: the shard's join (a GIL-free memcpy, off this thread) copies it once
                pieces += (pack({sizes}), {values})
            shard_bytes += record
    finally:
        self._shard_bytes = shard_bytes
"""


@cache
def _sample_loop(field_count: int) -> Callable[..., None]:
    """The per-sample loop, written out for `field_count` fields (as `namedtuple` does for its class).

    Per sample it does only: one subscript per field, an exact-`bytes` test, one `len` per
    value, one header pack, one join (small records) or one list extend, one size append, one
    add and one compare against the shard limit; everything else (a flush, bytearray/memoryview
    copies, explaining a bad sample, widening the sizes) is a method call off that path. The
    state it keeps in locals is written back to the writer on any exit, so a bad sample leaves
    every sample before it written.
    """
    values = [f"v{number}" for number in range(field_count)]
    sizes = [f"n{number}" for number in range(field_count)]
    source = _LOOP_TEMPLATE.format(
        values=", ".join(values) + ",",
        sizes=", ".join(sizes) + ",",
        fields=", ".join(f"f{number}" for number in range(field_count)) + ",",
        take="; ".join(f"v{number} = sample[f{number}]" for number in range(field_count)),
        all_bytes=" is ".join(["bytes", *(f"{value}.__class__" for value in values)]),
        measure="; ".join(f"{size} = len({value})" for size, value in zip(sizes, values)),
        record=" + ".join([str(8 * field_count), *sizes]),
    )
    filename = f"<mds sample loop, {field_count} fields>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # for tracebacks
    namespace: dict[str, Any] = {"SMALL_RECORD": SMALL_RECORD}
    exec(compile(source, filename, "exec"), namespace)  # our own template
    write_loop: Callable[..., None] = namespace["write_loop"]
    return write_loop


def _checked_fields(fields: Sequence[str]) -> tuple[str, ...]:
    if isinstance(fields, (str, bytes)) or not isinstance(fields, Iterable):
        raise TypeError(f"fields must be a list of field names, not {type(fields).__name__}")
    fields = tuple(fields)
    if not fields:
        raise ValueError("fields is empty: a dataset needs at least one field")
    for field in fields:
        if not isinstance(field, str) or not field:
            raise ValueError(f"field names must be non-empty strings, got {field!r}")
        try:
            field.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(
                f"field name {field!r} cannot be encoded as UTF-8 ({error.reason}): "
                "the index stores field names in UTF-8"
            ) from None
    duplicates = sorted({field for field in fields if fields.count(field) > 1})
    if duplicates:
        raise ValueError(f"fields must be unique; repeated: {', '.join(duplicates)}")
    return fields


def _checked_workers(workers: int | None) -> int:
    if workers is None:
        return min(MAX_DEFAULT_WORKERS, max(2, os.cpu_count() or 2))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    return workers


def _checked_limit(shard_size_limit: int) -> int:
    if isinstance(shard_size_limit, bool) or not isinstance(shard_size_limit, int):
        raise TypeError(f"shard_size_limit must be an int, not {type(shard_size_limit).__name__}")
    if shard_size_limit <= 0:
        raise ValueError(f"shard_size_limit must be positive, got {shard_size_limit}")
    return shard_size_limit


def _prepare_directory(storage: Storage, overwrite: bool) -> set[str]:
    """Refuse to clobber a published dataset; clear what a crashed writer left. Returns old shard names."""
    names = storage.list_names()
    published = [name for name in names if name in published_index_names()]
    if published and not overwrite:
        raise FileExistsError(
            f"{storage.describe(published[0])} exists: {storage.url} already holds a dataset "
            "(pass overwrite=True to replace it)"
        )
    storage.make_root()
    unpublish(storage, names)
    remove_temporaries(storage, names)
    return {name for name in names if mds.is_shard_file(name)}


def _explain_bad_sample(sample: Any, fields: tuple[str, ...], sample_number: int, error: Exception) -> Exception:
    """Turn whatever failed on the fast path into an error naming the sample and the field."""
    where = f"sample {sample_number}"
    if not isinstance(sample, Mapping):
        return TypeError(f"{where} is a {type(sample).__name__}, not a mapping of field name to bytes")
    for field in fields:
        if field not in sample:
            return KeyError(f"{where} has no field {field!r} (it has: {', '.join(map(str, sample))})")
        value = sample[field]
        if not isinstance(value, _BYTES_LIKE):
            return TypeError(
                f"{where}, field {field!r}: expected bytes, bytearray or memoryview, got {type(value).__name__}"
            )
    return ValueError(f"{where}: cannot encode ({error})")
