"""The life every writer shares: open, write, then exactly one of `finish()` (publish) or
`abort()` (discard), and a clear error for a write after either or after a failure.

Both formats' writers promise the same: a `with` block that ends normally publishes, one that
ends in an exception publishes nothing and leaves the folder as it was.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, Self

from .lock import DatasetLock
from .shard_pipeline import BackgroundShards
from .storage import Storage, WriterStorageError, is_temporary


def raise_if_unusable(problem: BaseException | None, finished: bool, url: str, writer: str) -> None:
    """How every writer says it cannot go on: a storage failure as `WriterStorageError` whenever
    it was seen, any other background failure as RuntimeError with its cause, a write after
    `finish()` as RuntimeError."""
    if isinstance(problem, WriterStorageError):
        raise WriterStorageError(f"writing {url} failed: {problem}") from problem
    if problem is not None:
        raise RuntimeError(f"writing {url} failed in the background: {problem}") from problem
    if finished:
        raise RuntimeError(f"the {writer} for {url} is finished; open a new one to write more")


class FinishOnExit(ABC):
    """A writer as a context manager: `finish()` when the block ends normally (unless the caller
    already did), `abort()` when it ends in an exception."""

    _finished: bool

    @abstractmethod
    def finish(self) -> None: ...

    @abstractmethod
    def abort(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._finished:
            self.finish()


def discard_written(shards: BackgroundShards[Any], storage: Storage, lock: DatasetLock) -> None:
    """Undo a writer that will not publish: stop its shard queue, remove every shard it started
    and any temporary file, release its lock. Best effort, since the storage may be what failed:
    what stays is cleaned by the next writer of the folder."""
    shards.abandon()
    try:
        for name in shards.names_started:
            storage.remove(name)
        remove_temporaries(storage)
    except Exception:  # e.g. botocore's connection errors, which are not OSError
        pass  # the original error is the one to raise; no index was written either way
    lock.release()


def remove_temporaries(storage: Storage, names: list[str] | None = None) -> None:
    """Remove the temporary files of atomic writes that never completed (`names`: a listing
    already made, to spare another)."""
    for name in storage.list_names() if names is None else names:
        if is_temporary(name):
            storage.remove(name)
