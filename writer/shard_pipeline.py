"""Background compression, checksumming and publishing of finished shards.

The caller's thread only encodes samples; finished shards go to a small thread pool.
zlib-ng, zlib and file writes release the GIL, so encoding, compressing and writing overlap. At most
`workers + 1` shards are in flight, which bounds memory to a few shards. A failure in the
pool is recorded and raised to the caller at its next call, never dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Generic, TypeVar

from .compression import Compression
from .format import shard_name
from .manifest import ShardRecord, checksum
from .storage import Storage, WriterStorageError

Record = TypeVar("Record")


class BackgroundShards(Generic[Record]):
    """The queue of shards being stored: back-pressure, order, failures. What storing one shard
    means (`_publish_shard`) and what it records are the subclass's."""

    def __init__(self, workers: int, on_failure: Callable[[BaseException], None]) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mds-shard")
        self._max_in_flight = workers + 1
        self._in_flight: deque[Future[Record]] = deque()
        self._records: list[Record] = []
        self._names_started: list[str] = []
        self._on_failure = on_failure

    @property
    def names_started(self) -> list[str]:
        """Every shard file name this pipeline was asked to write, finished or not."""
        return list(self._names_started)

    def submit(self, shard_number: int, pieces: list[bytes], samples: int) -> None:
        """Queue one finished shard; blocks while too many are in flight (back-pressure)."""
        while len(self._in_flight) >= self._max_in_flight:
            self._collect(self._in_flight.popleft())
        name = self._shard_name(shard_number)
        self._names_started.append(name)
        future = self._executor.submit(self._publish_shard, name, pieces, samples)
        future.add_done_callback(self._report_failure)
        self._in_flight.append(future)

    def drain(self) -> list[Record]:
        """Wait for every shard; raise the first failure; return the records in shard order."""
        while self._in_flight:
            self._collect(self._in_flight.popleft())
        self._executor.shutdown(wait=True)
        return list(self._records)

    def abandon(self) -> None:
        """Stop: drop what has not started, wait for what has, swallow their outcomes."""
        for future in self._in_flight:
            future.cancel()
        wait(list(self._in_flight))
        self._in_flight.clear()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _collect(self, future: Future[Record]) -> None:
        self._records.append(future.result())

    def _report_failure(self, future: Future[Record]) -> None:
        if not future.cancelled() and future.exception() is not None:
            self._on_failure(future.exception())  # type: ignore[arg-type]

    def _shard_name(self, shard_number: int) -> str:
        raise NotImplementedError

    def _publish_shard(self, name: str, pieces: list[bytes], samples: int) -> Record:
        raise NotImplementedError


class ShardPipeline(BackgroundShards[ShardRecord]):
    """v1 shards: compressed as a whole file, recorded with their CRC-32 for the manifest."""

    def __init__(
        self,
        storage: Storage,
        compression: Compression,
        workers: int,
        on_failure: Callable[[BaseException], None],
    ) -> None:
        super().__init__(workers, on_failure)
        self._storage = storage
        self._compression = compression
        self._suffix = compression.suffix

    def _shard_name(self, shard_number: int) -> str:
        return shard_name(shard_number, self._suffix)

    def _publish_shard(self, name: str, pieces: list[bytes], samples: int) -> ShardRecord:
        data = b"".join(pieces)  # releases the GIL for large shards: the copy overlaps encoding
        del pieces[:]
        stored = self._compression.compress(data)
        record = ShardRecord(name, samples, len(data), len(stored), checksum(stored))
        try:
            self._storage.write_atomic(name, stored)
        except Exception as error:
            raise WriterStorageError(f"could not write shard {self._storage.describe(name)}: {error}") from error
        return record
