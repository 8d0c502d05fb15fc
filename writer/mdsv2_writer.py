"""`MDSWriter`: mosaicml-streaming's MDS v2 (`index.json` + `shard.NNNNN.mds[.ext]`), written
with the promises of this package's own writer.

Constructed with mosaicml-streaming 0.13.0's keywords (`out`, `columns`, `compression`, `hashes`,
`size_limit`), it writes, for the same samples and settings, the very bytes S's `MDSWriter`
writes when uncompressed (`index.json` and every shard); compressed shards inflate to those
bytes (docs/formats.md). What differs is what happens around the bytes:

* `out` is any fsspec URL (S: a local folder, or a local/remote pair it uploads from);
* `index.json` is written last and atomically, and only by `finish()` or a clean exit of the
  `with` block: an exception in the block, a bad sample or a kill publishes nothing (S writes
  an index of what it has when its `with` block raises);
* one writer per folder (`.mds-lock`), and an existing dataset is replaced only with
  `exist_ok=True`, its index removed first so no reader ever sees it over new shards;
* shards are assembled, hashed, compressed and stored by background threads; a failure there
  is raised at the next call with its cause;
* a bad sample is refused naming its number and column, and changes nothing written before it.
"""

from __future__ import annotations

import linecache
import os
import struct
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache
from types import MethodType
from typing import Any, cast

from . import format as v1_format
from . import mdsv2_format as v2
from .column_encodings import COLUMNS, ColumnEncoding
from .lifecycle import FinishOnExit, discard_written, raise_if_unusable, remove_temporaries
from .lock import DatasetLock
from .mdsv2_compression import ShardCompression, parse_shard_compression
from .mdsv2_hashes import checked_hashes, hasher
from .published import published_index_names
from .shard_pipeline import BackgroundShards
from .storage import Storage, WriterStorageError

DEFAULT_SIZE_LIMIT = 1 << 26  # S's default
_S_OPTIONS = frozenset({"progress_bar", "max_workers", "retry", "exist_ok"})  # S's other keywords
SMALL_RECORD = 512  # records under this are joined into one object as they are written


class MDSWriter(FinishOnExit):
    """Write samples (`{column: value}`) as an MDS v2 dataset at `out` (any fsspec URL).

    Args:
        columns: `{name: encoding}`; encodings are S's names (`bytes`, `str`, `int8`...`uint64`,
            `float16/32/64`, `json`, `pkl`, `jpeg`, `png`, `str_int`, ...). A `bytes` value is
            taken as already encoded, in any column (S's rule); fixed-size columns check its length.
        out: the dataset's folder, any fsspec URL (`/data/ds`, `s3://bucket/ds`, `memory://ds`).
        keep_local: accepted for S's signature; nothing is cached locally, so it changes nothing.
        compression: None, or `zstd`, `zstd:N`, `gz`, `gz:N`, `bz2`, `bz2:N`, `br`, `br:N`, `snappy`.
        hashes: sorted, unique names (`sha1`, `sha256`, `xxh3_64`, ...) recorded for every shard.
        size_limit: a shard's size limit in bytes, an int or S's strings ("64mb"); None: none
            (shards still end before 4 GiB, the most a uint32 offset can address).
        storage_options: passed to fsspec (credentials belong in the environment).
        exist_ok: replace a dataset already at `out` (its index is removed first). S's other
            keywords `progress_bar` and `retry` are accepted and change nothing.
        max_workers: background threads that assemble, hash, compress and store shards
            (default 2 to 4 by CPU count); at most `max_workers + 1` shards are held in memory.
    """

    def __init__(
        self,
        *,
        columns: Mapping[str, str],
        out: str,
        keep_local: bool = False,
        compression: str | None = None,
        hashes: list[str] | None = None,
        size_limit: int | str | None = DEFAULT_SIZE_LIMIT,
        storage_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        unknown = sorted(set(kwargs) - _S_OPTIONS)
        if unknown:
            raise ValueError(f"unknown MDSWriter argument(s): {', '.join(unknown)}")
        if not isinstance(out, str):
            raise TypeError(
                f"out must be one URL (str), not {type(out).__name__}: "
                "a (local, remote) pair is not needed, write to the remote URL directly"
            )
        self.columns = _checked_columns(columns)
        self._compression = parse_shard_compression(compression)
        self.compression = self._compression.setting if self._compression else None
        self.hashes = checked_hashes(hashes)
        self.size_limit = v2.parse_size_limit(size_limit)
        workers = _checked_workers(kwargs.get("max_workers"))
        config = v2.shard_config(
            [(name, column.name, column.size) for name, column in self.columns],
            self.compression,
            self.hashes,
            self.size_limit,
        )
        self._config_data = v2.config_bytes(config)
        self._storage = Storage(out, storage_options)
        self._lock = DatasetLock(self._storage, "an MDSWriter")
        self._lock.acquire()
        try:
            self._stale_shards = _prepare_directory(self._storage, bool(kwargs.get("exist_ok", False)))
        except BaseException:
            self._lock.release()
            raise
        self._pipeline = _ShardFiles(
            self._storage, self._compression, self.hashes, config, workers, self._record_failure
        )
        self._empty_shard_bytes = v2.SHARD_HEAD + len(self._config_data)
        # S's rule for a new shard: when the limit < the shard's bytes with this sample; without a
        # limit, where a uint32 offset would overflow.
        self._limit = self.size_limit or v2.MAX_OFFSET
        self._pieces: list[bytes | bytearray] = []  # the current shard: runs of small samples, large values
        self._buffer = bytearray()  # the run of small samples being added to
        self._sizes: array[int] = array("I")  # the current shard's sample sizes
        self._shard_bytes = self._empty_shard_bytes
        self._written = 0  # samples in finished shards
        self._problem: BaseException | None = None
        self._finished = False
        self._stopped = False  # finished or failed: what `write` tests per sample
        self.shards: list[dict[str, Any]] = []  # the index's shard entries, once finish() returns
        self._encoders = tuple(_encoder(column) for _, column in self.columns)
        self.write = MethodType(_sample_writer(self.columns, self._encoders), self)  # type: ignore[method-assign]

    @property
    def url(self) -> str:
        return self._storage.url

    @property
    def total_samples(self) -> int:
        return self._written + len(self._sizes)

    def write(self, sample: Mapping[str, Any]) -> None:  # replaced per instance by the generated writer
        """Add one sample (`{column: value}`; other keys are ignored). A bad sample raises naming
        its number and column, and changes nothing written before it."""
        raise NotImplementedError

    def write_samples(self, samples: Iterable[Mapping[str, Any]]) -> None:
        """`write` for each sample of an iterable (streamed: a generator of any length)."""
        write = self.write
        for sample in samples:
            write(sample)

    # -- shards ---------------------------------------------------------------------------

    def _add_large(self, parts: tuple[bytes, ...]) -> None:
        """A large sample is kept by reference (its bytes are copied once, off this thread)."""
        if self._buffer:
            self._pieces.append(self._buffer)
            self._buffer = bytearray()
        self._pieces += parts

    def _flush_shard(self) -> None:
        """Hand the current shard (possibly empty: S's rule for an oversized first sample) to the pipeline."""
        if self._problem is not None:  # a background failure: stop before queueing more
            self._raise_if_unusable()
        pieces = self._pieces
        pieces.insert(0, v2.shard_head(self._sizes, self._config_data))
        if self._buffer:
            pieces.append(self._buffer)
        self._pipeline.submit(len(self._pipeline.names_started), cast(list[bytes], pieces), len(self._sizes))
        self._written += len(self._sizes)
        self._pieces = []
        self._buffer = bytearray()
        self._sizes = array("I")
        self._shard_bytes = self._empty_shard_bytes

    def _bad_sample(self, sample: Any, error: BaseException) -> Exception:
        """Name the sample and column of whatever failed on the fast path."""
        if self._stopped:
            self._raise_if_unusable()
        where = f"sample {self.total_samples}"
        if not isinstance(sample, Mapping):
            return TypeError(f"{where} is a {type(sample).__name__}, not a mapping of column name to value")
        for (name, column), encode in zip(self.columns, self._encoders):
            if name not in sample:
                return KeyError(f"{where} has no column {name!r} (it has: {', '.join(map(str, sample))})")
            try:
                value = encode(sample[name])
            except Exception as problem:
                kind = TypeError if isinstance(problem, TypeError) else ValueError
                return kind(f"{where}, column {name!r} ({column.name}): {problem}")
            if column.size is not None and len(value) != column.size:
                return ValueError(
                    f"{where}, column {name!r} ({column.name}): {len(value)} bytes given, "
                    f"the encoding takes exactly {column.size}"
                )
        if isinstance(error, OverflowError):
            return ValueError(f"{where} is too large: an MDS shard holds at most 4 GiB (offsets are uint32)")
        return ValueError(f"{where}: cannot encode ({type(error).__name__}: {error})")

    # -- publishing -----------------------------------------------------------------------

    def finish(self) -> None:
        """Store the last shard, wait for every shard, then publish `index.json`, last."""
        if self._finished:
            self._raise_if_unusable()
        self._finished = self._stopped = True
        try:
            if self._problem is not None:
                self._raise_if_unusable()
            if self._sizes:
                self._flush_shard()
            shards = self._pipeline.drain()
            index = v2.encode_index(shards)
            for name in sorted(self._stale_shards - set(self._pipeline.names_started)):
                self._storage.remove(name)
            try:
                self._storage.write_atomic(v2.INDEX_NAME, index)
            except OSError as error:
                raise WriterStorageError(f"could not write {self._storage.describe(v2.INDEX_NAME)}: {error}") from error
        except BaseException:
            self._discard_written()
            raise
        self.shards = shards
        self._lock.release()

    def abort(self) -> None:
        """Give up: publish nothing and remove every shard this writer stored."""
        if self._finished:
            return
        self._finished = self._stopped = True
        self._discard_written()

    def _discard_written(self) -> None:
        discard_written(self._pipeline, self._storage, self._lock)

    def _record_failure(self, error: BaseException) -> None:
        if self._problem is None:
            self._problem = error
        self._stopped = True

    def _raise_if_unusable(self) -> None:
        raise_if_unusable(self._problem, self._finished, self.url, "MDSWriter")


class _ShardFiles(BackgroundShards[dict[str, Any]]):
    """Each shard: joined, hashed, compressed, hashed again, stored; recorded as its index entry."""

    def __init__(
        self,
        storage: Storage,
        compression: ShardCompression | None,
        hashes: list[str],
        config: dict[str, Any],
        workers: int,
        on_failure: Callable[[BaseException], None],
    ) -> None:
        super().__init__(workers, on_failure)
        self._storage = storage
        self._compression = compression
        self._hashes = hashes
        self._config = config

    def _shard_name(self, shard_number: int) -> str:
        return v2.shard_basename(shard_number, self._compression.extension if self._compression else None)

    def _publish_shard(self, name: str, pieces: list[bytes], samples: int) -> dict[str, Any]:
        """Never one copy of the whole shard when it can be helped: uncompressed, the pieces are
        written as they are (gathered writes) and hashed in batches; zstd compresses the batches
        as they come. Only the compressions that take whole inputs get the shard joined."""
        compression = self._compression
        raw_name = name if compression is None else name.rsplit(".", 1)[0]
        size = sum(map(len, pieces))
        try:
            if compression is None:
                entry = self._entry(samples, raw_name, size, _digests(self._hashes, _batches(pieces)), None)
                self._storage.write_pieces_atomic(name, pieces)
                return entry
            if compression.stream is not None:
                compressor = compression.stream(size)
                raw_hashers = [hasher(algorithm) for algorithm in self._hashes]
                out = []
                for batch in _batches(pieces):
                    for each in raw_hashers:
                        each.update(batch)
                    out.append(compressor.compress(batch))
                out.append(compressor.flush())
                raw_digests = {algorithm: each.hexdigest() for algorithm, each in zip(self._hashes, raw_hashers)}
                stored = b"".join(out)
            else:
                data = b"".join(pieces)
                raw_digests = _digests(self._hashes, [data])
                stored = compression.compress(data)
            del pieces[:]
            entry = self._entry(samples, raw_name, size, raw_digests, (name, stored))
            self._storage.write_atomic(name, stored)
        except Exception as error:
            raise WriterStorageError(f"could not write shard {self._storage.describe(name)}: {error}") from error
        return entry

    def _entry(
        self, samples: int, raw_name: str, size: int, raw_digests: dict[str, str], stored: tuple[str, bytes] | None
    ) -> dict[str, Any]:
        """The shard's index entry: its sample count, `raw_data`, `zip_data` and settings."""
        zip_data = None
        if stored is not None:
            zip_name, data = stored
            zip_data = {"basename": zip_name, "bytes": len(data), "hashes": _digests(self._hashes, [data])}
        raw_data = {"basename": raw_name, "bytes": size, "hashes": raw_digests}
        return {"samples": samples, "raw_data": raw_data, "zip_data": zip_data, **self._config}


BATCH = 1 << 20  # bytes joined at a time for hashing and streaming compression: memory that is reused


def _batches(pieces: list[bytes]) -> Iterator[bytes]:
    """The pieces' bytes in order, in batches of about `BATCH` bytes (a larger piece on its own)."""
    batch: list[bytes] = []
    size = 0
    for piece in pieces:
        if len(piece) >= BATCH:
            if batch:
                yield b"".join(batch)
                batch, size = [], 0
            yield piece
            continue
        batch.append(piece)
        size += len(piece)
        if size >= BATCH:
            yield b"".join(batch)
            batch, size = [], 0
    if batch:
        yield b"".join(batch)


def _digests(algorithms: list[str], batches: Iterable[bytes]) -> dict[str, str]:
    if not algorithms:
        return {}
    hashers = [hasher(algorithm) for algorithm in algorithms]
    for batch in batches:
        for each in hashers:
            each.update(batch)
    return {algorithm: each.hexdigest() for algorithm, each in zip(algorithms, hashers)}


_WRITER_TEMPLATE = """
def make(names, encoders, pack):
    {fields} = names
    {encoders} = encoders

    def write(self, sample):
        try:
            {take}
        except Exception as error:
            raise self._bad_sample(sample, error) from None
        record = {record}
        shard_bytes = self._shard_bytes + record + 4
        if shard_bytes > self._limit or self._stopped:
            if self._stopped or record + {overhead} > MAX_OFFSET:
                raise self._bad_sample(sample, OverflowError())
            self._flush_shard()
            shard_bytes = self._shard_bytes + record + 4
        self._sizes.append(record)
        if record < SMALL_RECORD:
            buffer = self._buffer
            {small}
        else:
            self._add_large(({head}{values}))
        self._shard_bytes = shard_bytes

    return write
"""


def _sample_writer(
    columns: list[tuple[str, ColumnEncoding]], encoders: tuple[Callable[[Any], bytes], ...]
) -> Callable[..., None]:
    """`write(self, sample)` for these columns: see `_writer_factory`."""
    encodings = tuple(column.name for _, column in columns)
    variable = sum(1 for _, column in columns if column.size is None)
    return _writer_factory(encodings)(tuple(name for name, _ in columns), encoders, struct.Struct(f"<{variable}I").pack)


@cache
def _writer_factory(encodings: tuple[str, ...]) -> Callable[..., Callable[..., None]]:
    """The per-sample code, written out for these column encodings (as `namedtuple` writes its class).

    Per sample it does only: one subscript per column, an exact-type test (bytes pass through,
    `str` encodes inline, anything else calls its encoder), one `len` per variable-size column,
    one header pack, one join (small samples) or list extend, one size append and one compare.
    Everything else (a flush, explaining a bad sample) is a method call off that path.
    """
    take: list[str] = []
    sizes: list[str] = []
    fixed = 0
    for number, encoding in enumerate(encodings):
        value = f"v{number}"
        take.append(f"{value} = sample[f{number}]")
        if encoding == "str":
            take.append(f"if {value}.__class__ is str: {value} = {value}.encode('utf-8')")
            take.append(f"elif {value}.__class__ is not bytes: {value} = e{number}({value})")
        else:
            take.append(f"if {value}.__class__ is not bytes: {value} = e{number}({value})")
        size = COLUMNS[encoding].size
        if size is None:
            take.append(f"n{number} = len({value})")
            sizes.append(f"n{number}")
        else:
            take.append(f"if len({value}) != {size}: raise ValueError()")
            fixed += size
    count = len(encodings)
    source = _WRITER_TEMPLATE.format(
        fields=", ".join(f"f{number}" for number in range(count)) + ",",
        encoders=", ".join(f"e{number}" for number in range(count)) + ",",
        take="\n            ".join(take),
        record=" + ".join([str(4 * len(sizes) + fixed), *sizes]),
        overhead=v2.SHARD_HEAD + v2.SAMPLE_OVERHEAD,
        head=f"pack({', '.join(sizes)}), " if sizes else "",
        small="; ".join(
            ([f"buffer += pack({', '.join(sizes)})"] if sizes else [])
            + [f"buffer += v{number}" for number in range(count)]
        ),
        values=", ".join(f"v{number}" for number in range(count)) + ",",
    )
    filename = f"<MDSWriter sample writer for {', '.join(encodings)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # for tracebacks
    namespace: dict[str, Any] = {"SMALL_RECORD": SMALL_RECORD, "MAX_OFFSET": v2.MAX_OFFSET, "join": b"".join}
    exec(compile(source, filename, "exec"), namespace)
    factory: Callable[..., Callable[..., None]] = namespace["make"]
    return factory


def _encoder(column: ColumnEncoding) -> Callable[[Any], bytes]:
    """The column's encoder, taking any `bytes` (a subclass too) as encoded already, as S does."""
    encode = column.encode

    def encoder(value: Any) -> bytes:
        if isinstance(value, bytes):
            return bytes(value)
        return encode(value)

    return encoder


def _checked_columns(columns: Mapping[str, str]) -> list[tuple[str, ColumnEncoding]]:
    """`(name, encoding)` in name order (S's column order); unknown encodings are refused."""
    if not isinstance(columns, Mapping) or not columns:
        raise ValueError("columns must be a non-empty mapping of column name to encoding, e.g. {'text': 'str'}")
    checked = []
    for name in columns:
        if not isinstance(name, str) or not name:
            raise ValueError(f"column names must be non-empty strings, got {name!r}")
    for name in sorted(columns):
        encoding = columns[name]
        if encoding not in COLUMNS:
            raise ValueError(f"column {name!r}: unknown encoding {encoding!r}; known: {', '.join(COLUMNS)}")
        checked.append((name, COLUMNS[encoding]))
    return checked


def _checked_workers(workers: int | None) -> int:
    if workers is None:
        return max(2, min(4, os.cpu_count() or 2))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"max_workers must be a positive int, got {workers!r}")
    return workers


def _prepare_directory(storage: Storage, exist_ok: bool) -> set[str]:
    """Refuse to replace a dataset unless asked; unpublish it first when asked; clear what a
    crashed writer left. Returns the shard files there now (removed at publishing unless rewritten)."""
    names = storage.list_names()
    indexes = [name for name in names if name == v2.INDEX_NAME or name in published_index_names()]
    if indexes and not exist_ok:
        raise FileExistsError(
            f"{storage.describe(indexes[0])} exists: {storage.url} already holds a dataset "
            "(pass exist_ok=True to replace it)"
        )
    storage.make_root()
    for name in indexes:  # the index first: from here on no reader takes the folder for a dataset
        storage.remove(name)
    remove_temporaries(storage, names)
    return {name for name in names if v2.is_shard_file(name) or v1_format.is_shard_file(name)}
