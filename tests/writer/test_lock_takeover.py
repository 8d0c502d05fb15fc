"""Taking over the lock of a dead holder is atomic: many processes racing through one stale
lock give exactly one holder, and exactly one writer finishes in the folder."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path

from writer import MDSDataset, StreamingDatasetWriter
from writer.lock import LOCK_NAME, DatasetLock, DatasetLockedError
from writer.storage import Storage
from writer.verify import verify

RACERS = 12
TRIALS = 12
HOLD_SECONDS = 0.5  # long enough that a second holder, if the takeover let one through, overlaps the first
RACE_TIMEOUT = 60


def _dead_pid() -> int:
    process = multiprocessing.get_context("fork").Process(target=lambda: None)
    process.start()
    process.join()
    assert process.pid is not None
    return process.pid


def write_stale_lock(directory: Path) -> None:
    """The lock a holder killed with -9 on this host leaves behind."""
    directory.mkdir(parents=True, exist_ok=True)
    stale = {
        "purpose": "a StreamingDatasetWriter",
        "host": socket.gethostname(),
        "pid": _dead_pid(),
        "pid_namespace": os.readlink("/proc/self/ns/pid"),
        "since": "2026-01-01T00:00:00Z",
        "token": "killed",
    }
    (directory / LOCK_NAME).write_text(json.dumps(stale))


def _take_the_lock(url: str, barrier: Barrier, results: multiprocessing.Queue) -> None:
    barrier.wait(timeout=RACE_TIMEOUT)
    lock = DatasetLock(Storage(url), "a racer")
    try:
        lock.acquire()
    except DatasetLockedError as error:
        results.put(("refused", str(error)))
        return
    try:
        results.put(("held", json.loads(Path(url, LOCK_NAME).read_text())["pid"] == os.getpid()))
        time.sleep(HOLD_SECONDS)
    finally:
        lock.release()


def _write_a_dataset(url: str, barrier: Barrier, results: multiprocessing.Queue) -> None:
    barrier.wait(timeout=RACE_TIMEOUT)
    try:
        with StreamingDatasetWriter(url, ["who", "payload"], shard_size_limit=4096) as writer:
            for number in range(400):
                writer.write_sample({"who": str(os.getpid()).encode(), "payload": bytes(number % 97)})
    except (DatasetLockedError, FileExistsError) as error:  # held, or published by the winner already
        results.put(("refused", str(error)))
        return
    results.put(("finished", os.getpid()))


def race(target: object, url: str) -> list[tuple[str, object]]:
    """Start RACERS processes on `target` at the same moment; what each reported."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(RACERS)
    results: multiprocessing.Queue = context.Queue()
    racers = [context.Process(target=target, args=(url, barrier, results)) for _ in range(RACERS)]
    for racer in racers:
        racer.start()
    reports = [results.get(timeout=RACE_TIMEOUT) for _ in racers]
    for racer in racers:
        racer.join(timeout=RACE_TIMEOUT)
        assert racer.exitcode == 0, f"a racer ended with exit code {racer.exitcode}"
    return reports


def test_processes_racing_through_a_stale_lock_give_exactly_one_holder(tmp_path: Path) -> None:
    for trial in range(TRIALS):
        directory = tmp_path / f"trial{trial}"
        write_stale_lock(directory)
        reports = race(_take_the_lock, str(directory))
        held = [detail for outcome, detail in reports if outcome == "held"]
        assert held == [True], f"trial {trial}: {len(held)} holders at once: {reports}"
        assert all("locked by a racer" in str(detail) for outcome, detail in reports if outcome == "refused")
        assert not (directory / LOCK_NAME).exists()


def test_concurrent_lockers_get_the_lock_exactly_once(tmp_path: Path) -> None:
    for trial in range(TRIALS // 2):
        reports = race(_take_the_lock, str(tmp_path / f"trial{trial}"))
        assert [outcome for outcome, _ in reports].count("held") == 1, reports


def test_writers_racing_through_a_stale_lock_finish_once_and_publish_one_sound_dataset(tmp_path: Path) -> None:
    for trial in range(TRIALS // 2):
        directory = tmp_path / f"trial{trial}"
        write_stale_lock(directory)
        reports = race(_write_a_dataset, str(directory))
        finished = [detail for outcome, detail in reports if outcome == "finished"]
        assert len(finished) == 1, f"trial {trial}: {len(finished)} writers finished in one folder: {reports}"
        assert verify(str(directory)).ok
        samples = list(MDSDataset(str(directory)))
        assert len(samples) == 400 and {sample["who"] for sample in samples} == {str(finished[0]).encode()}
