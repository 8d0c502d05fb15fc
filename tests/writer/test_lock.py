"""One writer per dataset directory: a second one is refused naming the holder; a dead one's lock is taken over."""

import json
import multiprocessing
import os
import socket

import pytest

from writer import MDSDataset, StreamingDatasetWriter
from writer.lock import LOCK_NAME, DatasetLockedError
from writer.merge import merge_datasets


def test_a_second_writer_in_the_same_directory_is_refused_naming_the_first(tmp_path):
    first = StreamingDatasetWriter(str(tmp_path / "ds"), ["a"])
    first.write_sample({"a": b"1"})
    with pytest.raises(DatasetLockedError, match=rf"locked by a StreamingDatasetWriter \(pid {os.getpid()} on host"):
        StreamingDatasetWriter(str(tmp_path / "ds"), ["a"], overwrite=True)
    first.finish()
    assert [s["a"] for s in MDSDataset(str(tmp_path / "ds"))] == [b"1"]
    assert not (tmp_path / "ds" / LOCK_NAME).exists()


def test_a_publish_is_refused_while_a_writer_holds_the_target(tmp_path):
    with StreamingDatasetWriter(str(tmp_path / "part"), ["a"]) as writer:
        writer.write_sample({"a": b"1"})
    holder = StreamingDatasetWriter(str(tmp_path / "out"), ["a"])
    with pytest.raises(DatasetLockedError, match=f"remove {tmp_path / 'out' / LOCK_NAME}"):
        merge_datasets([str(tmp_path / "part")], str(tmp_path / "out"))
    holder.abort()
    merge_datasets([str(tmp_path / "part")], str(tmp_path / "out"))


def _dead_pid() -> int:
    process = multiprocessing.get_context("fork").Process(target=lambda: None)
    process.start()
    process.join()
    return process.pid


def test_the_lock_of_a_killed_process_on_this_host_is_taken_over(tmp_path):
    (tmp_path / "ds").mkdir()
    stale = {
        "purpose": "a StreamingDatasetWriter",
        "host": socket.gethostname(),
        "pid": _dead_pid(),
        "pid_namespace": os.readlink("/proc/self/ns/pid"),
        "since": "2026-01-01T00:00:00Z",
        "token": "gone",
    }
    (tmp_path / "ds" / LOCK_NAME).write_text(json.dumps(stale))
    with StreamingDatasetWriter(str(tmp_path / "ds"), ["a"]) as writer:
        writer.write_sample({"a": b"x"})
    assert len(MDSDataset(str(tmp_path / "ds"))) == 1


def test_a_lock_held_on_another_host_is_never_taken_over(tmp_path):
    (tmp_path / "ds").mkdir()
    other = {"purpose": "merge", "host": "another-machine", "pid": 1, "since": "2026-01-01T00:00:00Z"}
    (tmp_path / "ds" / LOCK_NAME).write_text(json.dumps(other))
    with pytest.raises(DatasetLockedError, match="locked by merge \\(pid 1 on host another-machine"):
        StreamingDatasetWriter(str(tmp_path / "ds"), ["a"])


def test_a_lock_from_another_pid_namespace_of_the_same_host_name_is_never_taken_over(tmp_path):
    (tmp_path / "ds").mkdir()
    container = {
        "purpose": "merge",
        "host": socket.gethostname(),
        "pid": _dead_pid(),
        "pid_namespace": "pid:[1]",
        "since": "2026-01-01T00:00:00Z",
    }
    (tmp_path / "ds" / LOCK_NAME).write_text(json.dumps(container))
    with pytest.raises(DatasetLockedError, match="locked by merge"):
        StreamingDatasetWriter(str(tmp_path / "ds"), ["a"])


def test_bad_workers_are_refused_before_any_file_or_lock(tmp_path):
    with pytest.raises(ValueError, match="workers must be a positive int"):
        StreamingDatasetWriter(str(tmp_path / "ds"), ["a"], workers=0)
    assert not (tmp_path / "ds").exists()
    with StreamingDatasetWriter(str(tmp_path / "ds"), ["a"]) as writer:
        writer.write_sample({"a": b"x"})
