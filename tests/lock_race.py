"""Many processes racing for one dataset's lock, started at the same moment (for local and S3 tests)."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import time
from collections.abc import Callable
from multiprocessing.synchronize import Barrier

import s3fs

from writer import StreamingDatasetWriter
from writer.lock import LOCK_NAME, DatasetLock, DatasetLockedError
from writer.storage import Storage

RACERS = 12
HOLD_SECONDS = 0.5  # long enough that a second holder, if the takeover let one through, overlaps the first
RACE_TIMEOUT = 60
SAMPLES = 400

Racer = Callable[[str, Barrier, "multiprocessing.Queue[tuple[str, object]]"], None]


def _dead_pid() -> int:
    process = multiprocessing.get_context("fork").Process(target=lambda: None)
    process.start()
    process.join()
    assert process.pid is not None
    return process.pid


def write_stale_lock(url: str) -> None:
    """The lock a holder killed with -9 on this host leaves behind."""
    stale = {
        "purpose": "a StreamingDatasetWriter",
        "host": socket.gethostname(),
        "pid": _dead_pid(),
        "pid_namespace": os.readlink("/proc/self/ns/pid"),
        "since": "2026-01-01T00:00:00Z",
        "token": "killed",
    }
    storage = Storage(url)
    storage.make_root()
    storage.write_atomic(LOCK_NAME, json.dumps(stale).encode())


def take_the_lock(url: str, barrier: Barrier, results: multiprocessing.Queue[tuple[str, object]]) -> None:
    """Report ("held", (when it got the lock, when it let go)) or ("refused", the message)."""
    s3fs.S3FileSystem.clear_instance_cache()  # a client of the parent's must not cross the fork
    barrier.wait(timeout=RACE_TIMEOUT)
    storage = Storage(url)
    lock = DatasetLock(storage, "a racer")
    try:
        lock.acquire()
    except DatasetLockedError as error:
        results.put(("refused", str(error)))
        return
    try:
        since = time.time()
        assert json.loads(storage.read(LOCK_NAME))["pid"] == os.getpid(), "the lock does not name its holder"
        time.sleep(HOLD_SECONDS)
        results.put(("held", (since, time.time())))
    finally:
        lock.release()


def write_a_dataset(url: str, barrier: Barrier, results: multiprocessing.Queue[tuple[str, object]]) -> None:
    """Report ("finished", pid) after publishing SAMPLES samples naming this process, or ("refused", why)."""
    s3fs.S3FileSystem.clear_instance_cache()
    barrier.wait(timeout=RACE_TIMEOUT)
    try:
        with StreamingDatasetWriter(url, ["who", "payload"], shard_size_limit=4096) as writer:
            for number in range(SAMPLES):
                writer.write_sample({"who": str(os.getpid()).encode(), "payload": bytes(number % 97)})
    except (DatasetLockedError, FileExistsError) as error:  # held, or published by the winner already
        results.put(("refused", str(error)))
        return
    results.put(("finished", os.getpid()))


def holders_overlapping(reports: list[tuple[str, object]]) -> list[tuple[float, float]]:
    """The holding times (start, end) that overlap another holder's: none where the lock works."""
    held = sorted(detail for outcome, detail in reports if outcome == "held")  # type: ignore[type-var]
    return [later for earlier, later in zip(held, held[1:]) if later[0] < earlier[1]]  # type: ignore[index]


def race(target: Racer, url: str, racers: int = RACERS) -> list[tuple[str, object]]:
    """Start `racers` processes (not threads) on `target` at the same moment; what each reported."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(racers)
    results: multiprocessing.Queue[tuple[str, object]] = context.Queue()
    processes = [context.Process(target=target, args=(url, barrier, results)) for _ in range(racers)]
    for process in processes:
        process.start()
    try:
        reports = [results.get(timeout=RACE_TIMEOUT) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=RACE_TIMEOUT)
            if process.exitcode is None:
                process.kill()
    assert all(process.exitcode == 0 for process in processes), [process.exitcode for process in processes]
    return reports
