"""One writer per dataset directory: a lock file that says who holds it.

Two writers in one directory would interleave shards (each shard valid, the index matching
neither), and two publishes of one output would remove each other's files. So every writer
and every publish takes `<dir>/.mds-lock` first:

* local disks: created with O_CREAT|O_EXCL (atomic); a lock left by a process of this host
  that no longer runs (kill -9) is taken over;
* object stores: a conditional PUT (`If-None-Match: *`), which S3 and compatible servers
  answer atomically; a lock left by a crash is reported with its holder, and removing it is
  the user's call (nothing here can tell a dead holder on another machine from a slow one).
"""

from __future__ import annotations

import json
import os
import socket
import time
from types import TracebackType
from typing import Any

from .storage import Storage

LOCK_NAME = ".mds-lock"


class DatasetLockedError(RuntimeError):
    """Another writer or publish holds the directory; the message names it and how to clear it."""


class DatasetLock:
    """`with DatasetLock(storage, "publish"):` — held for the block, released after it."""

    def __init__(self, storage: Storage, purpose: str) -> None:
        self.storage = storage
        self.holder = {"purpose": purpose, "host": socket.gethostname(), "pid": os.getpid(),
                       "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self._data = json.dumps(self.holder).encode()
        self.held = False

    def acquire(self) -> None:
        self.storage.make_root()
        if self.storage.create_exclusive(LOCK_NAME, self._data):
            self.held = True
            return
        holder = self._current_holder()
        if holder is not None and _is_dead_local_process(holder):
            self.storage.remove(LOCK_NAME)
            if self.storage.create_exclusive(LOCK_NAME, self._data):
                self.held = True
                return
            holder = self._current_holder()
        raise DatasetLockedError(f"{self.storage.url} is locked by {_describe(holder)}; "
                                 f"if that process is gone, remove {self.storage.describe(LOCK_NAME)}")

    def release(self) -> None:
        if self.held and self._current_holder() == self.holder:
            self.storage.remove(LOCK_NAME)
        self.held = False

    def _current_holder(self) -> dict[str, Any] | None:
        try:
            holder = json.loads(self.storage.read(LOCK_NAME))
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None

    def __enter__(self) -> "DatasetLock":
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.release()
            return
        try:
            self.release()
        except Exception:  # noqa: BLE001 - the error that ended the block is the one to raise
            pass


def _is_dead_local_process(holder: dict[str, Any]) -> bool:
    """True only when the holder ran on this host and its pid is gone (never guessed elsewhere)."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _describe(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "another writer (its lock file is unreadable)"
    return (f"{holder.get('purpose', 'a writer')} (pid {holder.get('pid')} on host {holder.get('host')}, "
            f"since {holder.get('since')})")
