"""Fault injection at every storage step, and the invariant every failure must keep.

`writer.storage.before_change` is called before each change the code makes to storage
(write, place, remove, mkdir, create). `fail_at(k)` makes the k-th one raise ENOSPC, as a
full disk or a refused PUT would; `count_changes` counts them on a fault-free run, so a test
can fail each step in turn.

The invariant after a failed operation: the target holds the previous dataset byte for byte,
or the new one complete, or — only when the publish's own steps failed — no index; the error
message says which of these it is; and the same operation run again without a fault leaves
the new dataset complete.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import fsspec

from writer import storage
from writer.published import INDEX_NAMES


class InjectedFault(OSError):
    pass


@contextmanager
def fail_at(k: int) -> Iterator[list[str]]:
    """Make the k-th storage change (1-based) fail; yields the changes seen, for messages."""
    seen: list[str] = []
    lock = threading.Lock()

    def hook(operation: str, url: str) -> None:
        with lock:
            seen.append(f"{operation} {url}")
            if len(seen) == k:
                raise InjectedFault(errno.ENOSPC, f"injected fault at change {k}: {operation} {url}")

    storage.before_change = hook
    try:
        yield seen
    finally:
        storage.before_change = None


def count_changes(operation: Callable[[], object]) -> list[str]:
    """Run `operation` with no fault; the storage changes it made, in order."""
    with fail_at(0) as seen:
        operation()
    return seen


def snapshot(url: str) -> dict[str, bytes]:
    """The top-level files of a directory at any fsspec URL (sub-folders and the lock left out)."""
    fs, root = fsspec.core.url_to_fs(url)
    fs.invalidate_cache()
    try:
        entries = fs.ls(root, detail=True)
    except FileNotFoundError:
        return {}
    files = {}
    for entry in entries:
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if entry["type"] == "file" and name != ".mds-lock":
            files[name] = fs.cat_file(entry["name"])
    return files


def has_index(files: dict[str, bytes]) -> bool:
    return any(name in files for name in INDEX_NAMES)


def check_failure(
    url: str,
    before: dict[str, bytes],
    error: BaseException,
    is_new: Callable[[], bool],
    no_index_allowed: bool,
    must_claim: bool,
) -> str:
    """Assert the invariant on `url` after `error`; returns the state found: "previous", "new" or
    "no index". A publish's message (`must_claim`) says what `url` holds whenever it is not the
    previous dataset, and what a message says is what is there; losing a published index is
    never silent."""
    now, message = snapshot(url), str(error)
    if not has_index(now):
        state = "no index"
        assert no_index_allowed, f"no index after a failure outside the publish's own steps: {message}"
        if has_index(before):
            assert "its index was removed" in message, f"the index was lost and the message does not say so: {message}"
    elif now == before:
        state = "previous"
    else:
        assert is_new(), f"the index is neither the previous dataset nor a complete new one after: {message}"
        state = "new"
    claims = {"is unchanged": "previous", "its index was removed": "no index", "is the new one": "new"}
    made = [words for words in claims if words in message]
    if must_claim and state != "previous":  # silence is allowed only where nothing changed (e.g. a source's lock)
        assert made, f"the message does not say what {url} holds ({state}): {message}"
    for words in made:
        assert claims[words] == state, f"the message says {words!r} but the dataset is {state}: {message}"
    return state
