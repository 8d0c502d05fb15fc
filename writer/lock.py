"""One writer per dataset directory: a lock file that says who holds it.

Two writers in one directory would interleave shards (each shard valid, the index matching
neither), and two publishes of one output would remove each other's files. So every writer
and every publish takes `<dir>/.mds-lock` first:

* created with O_CREAT|O_EXCL on local disks, a conditional PUT (`If-None-Match: *`) on
  object stores: both atomic;
* a lock left by a process of this host that no longer runs (kill -9) is taken over by a
  compare-and-swap of that very lock (flock + rename locally, `If-Match` on its ETag on S3), so
  processes racing through one stale lock give exactly one holder;
* a lock of another host, or on a store with no conditional replace, is reported with its
  holder, and removing it is the user's call (nothing here can tell a dead holder on another
  machine from a slow one).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from .storage import Storage

LOCK_NAME = ".mds-lock"
_HELD_HERE: set[str] = set()  # tokens of the locks this process holds now
_LOOKS = 5  # how often a takeover that lost to another process looks at the lock again


class DatasetLockedError(RuntimeError):
    """Another writer or publish holds the directory; the message names it and how to clear it."""


@dataclass(frozen=True)
class LockWait:
    """Wait up to `seconds` for a lock a live process holds, calling `report` with what it waits
    for (the lock's URL and holder) at once and every `report_every` seconds: a wait is never
    silent, and never endless."""

    seconds: float
    report: Callable[[str], None]
    report_every: float = 30.0
    poll: float = 0.5


class DatasetLock:
    """`with DatasetLock(storage, "publish"):` — held for the block, released after it.

    Without `wait`, a lock held by a live process is refused at once (DatasetLockedError)."""

    def __init__(self, storage: Storage, purpose: str, wait: LockWait | None = None) -> None:
        self.storage = storage
        self.wait = wait
        self.holder = {
            "purpose": purpose,
            "host": socket.gethostname(),
            "pid_namespace": _pid_namespace(),
            "pid": os.getpid(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "token": uuid.uuid4().hex,
        }
        self._token = str(self.holder["token"])
        self._data = json.dumps(self.holder).encode()
        self.held = False

    def acquire(self) -> None:
        """Create the lock, or take over the lock of a dead holder; else DatasetLockedError naming it.

        A takeover is a compare-and-swap of the dead holder's lock (`Storage.replace_if_unchanged`):
        of many processes that found the same stale lock, exactly one replaces it, and the others
        look again and find that one alive."""
        for look in range(_LOOKS):
            if self._create_in_root():
                return
            seen = self._read_lock()
            if seen is None:
                continue  # released between the create and the read
            holder = _parse(seen)
            if holder is None or not _is_abandoned(holder) or not self.storage.can_replace_if_unchanged:
                break
            if self.storage.replace_if_unchanged(LOCK_NAME, seen, self._data):
                self._mark_held()
                return
            time.sleep(0.01 * (look + 1))  # another process changed the lock (took it over, released it)
        raise DatasetLockedError(
            f"{self.storage.url} is locked by {_describe(self._current_holder())}; "
            f"if that process is gone, remove {self.storage.describe(LOCK_NAME)}"
        )

    def acquire_waiting(self, wait: LockWait) -> None:
        """`acquire`, trying again while a live holder keeps the lock, for up to `wait.seconds`."""
        deadline = time.monotonic() + wait.seconds
        next_report = time.monotonic()
        while True:
            try:
                self.acquire()
                return
            except DatasetLockedError as error:
                now = time.monotonic()
                if now >= deadline:
                    raise DatasetLockedError(f"{error} (waited {wait.seconds:g} s)") from None
                if now >= next_report:
                    wait.report(f"waiting up to {deadline - now:.0f} s more for the lock: {error}")
                    next_report = now + wait.report_every
                time.sleep(min(wait.poll, max(0.0, deadline - now)))

    def _create_in_root(self) -> bool:
        for attempt in range(3):  # a parent folder removed meanwhile (an empty staging folder) is made again
            self.storage.make_root()
            try:
                return self._create()
            except FileNotFoundError:
                if attempt == 2:
                    raise
        return False

    def _read_lock(self) -> bytes | None:
        try:
            return self.storage.read(LOCK_NAME)
        except FileNotFoundError:
            return None

    def _create(self) -> bool:
        if not self.storage.create_exclusive(LOCK_NAME, self._data):
            return False
        self._mark_held()
        return True

    def _mark_held(self) -> None:
        self.held = True
        _HELD_HERE.add(self._token)

    def release(self) -> None:
        """Remove the lock if it is still ours. Never raises: the work it guarded is done, and a
        lock left behind is taken over by this process or reported, with its holder, to others."""
        if not self.held:
            return
        self.held = False
        try:
            if self._current_holder() == self.holder:
                self.storage.remove(LOCK_NAME)
        except Exception as error:  # see the docstring
            warnings.warn(f"could not remove the lock {self.storage.describe(LOCK_NAME)}: {error}", stacklevel=2)
        finally:  # only now: until it is removed, another thread here must not judge it abandoned
            _HELD_HERE.discard(self._token)

    def _current_holder(self) -> dict[str, Any] | None:
        try:
            return _parse(self.storage.read(LOCK_NAME))
        except OSError:
            return None

    def __enter__(self) -> DatasetLock:
        if self.wait is None:
            self.acquire()
        else:
            self.acquire_waiting(self.wait)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _parse(data: bytes) -> dict[str, Any] | None:
    try:
        holder = json.loads(data)
    except ValueError:
        return None
    return holder if isinstance(holder, dict) else None


def _is_abandoned(holder: dict[str, Any]) -> bool:
    """True only for a lock of this host whose process is gone, or of this process that no lock
    object here holds any more (its removal failed). Never guessed for another host."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    if holder.get("pid_namespace") != _pid_namespace():  # a container with this host name: its pids are not ours
        return False
    if holder["pid"] == os.getpid():
        return holder.get("token") not in _HELD_HERE
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _pid_namespace() -> str | None:
    """Which pid namespace this process's pids belong to (Linux); None where it cannot be told."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _describe(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "another writer (its lock file is unreadable)"
    return (
        f"{holder.get('purpose', 'a writer')} (pid {holder.get('pid')} on host {holder.get('host')}, "
        f"since {holder.get('since')})"
    )
