"""Nothing half-written is ever published: exceptions, background failures, kill -9, overwrites."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from writer import MDSDataset, StreamingDatasetWriter, WriterStorageError
from writer.storage import Storage, is_temporary

from .helpers import fail_writing, seed_samples


def test_an_exception_in_the_with_block_publishes_nothing_and_cleans_up(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with StreamingDatasetWriter(str(tmp_path), ["uid", "data"], shard_size_limit=100) as writer:
            writer.write_samples(seed_samples(), use_tqdm=False)  # many shards already written
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_writing_over_a_published_dataset_raises_and_changes_nothing(tmp_path):
    with StreamingDatasetWriter(str(tmp_path), ["uid", "data"]) as writer:
        writer.write_samples(seed_samples(), use_tqdm=False)
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    with pytest.raises(FileExistsError, match="index.mds"):
        StreamingDatasetWriter(str(tmp_path), ["uid", "data"])
    assert {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)} == before


def test_overwrite_replaces_a_dataset_and_removes_its_stale_files(tmp_path):
    with StreamingDatasetWriter(str(tmp_path), ["uid", "data"], shard_size_limit=100) as writer:
        writer.write_samples(seed_samples(), use_tqdm=False)
    with StreamingDatasetWriter(str(tmp_path), ["uid"], compression="gz", overwrite=True) as writer:
        writer.write_sample({"uid": b"only"})
    assert sorted(os.listdir(tmp_path)) == ["000000.mds.gz", "compression.txt", "index.mds.gz", "mds_manifest.json"]
    assert list(MDSDataset(str(tmp_path))) == [{"uid": b"only"}]


def test_a_failed_shard_write_surfaces_and_publishes_nothing(tmp_path, monkeypatch):
    fail_writing(monkeypatch, "000002.mds")
    with pytest.raises(WriterStorageError, match="disk full"):
        with StreamingDatasetWriter(str(tmp_path), ["uid", "data"], shard_size_limit=100) as writer:
            writer.write_samples(seed_samples(), use_tqdm=False)
    assert os.listdir(tmp_path) == []


def test_a_background_failure_is_raised_by_the_next_call(tmp_path, monkeypatch):
    def failing_write(self, name, data):
        raise OSError("bucket gone")

    monkeypatch.setattr(Storage, "write_atomic", failing_write)
    writer = StreamingDatasetWriter(str(tmp_path), ["uid"], shard_size_limit=10)
    writer.write_sample({"uid": b"first"})
    writer.write_sample({"uid": b"second"})  # hands shard 0 to the pipeline, which fails
    deadline = time.monotonic() + 10
    with pytest.raises(WriterStorageError, match="could not write shard .*000000.mds: bucket gone"):
        while time.monotonic() < deadline:
            writer.write_sample({"uid": b"more"})
            time.sleep(0.01)
    with pytest.raises(WriterStorageError, match="bucket gone"):
        writer.finish()
    writer.abort()
    assert not (tmp_path / "index.mds").exists()


def test_a_failed_index_write_raises_the_same_type_naming_the_dataset(tmp_path, monkeypatch):
    fail_writing(monkeypatch, "index.mds")
    expected = rf"could not publish {re.escape(str(tmp_path))}: .*index.mds: disk full"
    with pytest.raises(WriterStorageError, match=expected):
        with StreamingDatasetWriter(str(tmp_path), ["uid", "data"], shard_size_limit=100) as writer:
            writer.write_samples(seed_samples(), use_tqdm=False)
    assert os.listdir(tmp_path) == []


KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from writer import StreamingDatasetWriter, storage

    target, kill_at, count_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    seen = []

    def kill_before(operation, url):  # called before every change to storage, from any thread
        seen.append(f"{operation} {url}")
        if len(seen) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    storage.before_change = kill_before
    writer = StreamingDatasetWriter(target, ["uid", "payload"], shard_size_limit=1 << 12)
    for number in range(200):
        writer.write_sample({"uid": str(number).encode(), "payload": bytes(100)})
    writer.finish()
    with open(count_file, "w") as counted:
        counted.write("\\n".join(seen))
""")


def run_killed_writer(target, kill_at, count_file):
    return subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(target), str(kill_at), str(count_file)], timeout=60
    ).returncode


def test_kill_9_at_any_moment_leaves_no_index_and_the_next_writer_cleans_up(tmp_path):
    assert run_killed_writer(tmp_path / "dry", 0, tmp_path / "steps.txt") == 0
    steps = (tmp_path / "steps.txt").read_text().splitlines()
    assert len(steps) >= 10 and any(step.endswith("index.mds") for step in steps), steps
    complete = list(MDSDataset(str(tmp_path / "dry")))
    for kill_at, step in enumerate(steps, start=1):  # a kill before every storage step of the writer
        target = tmp_path / f"killed{kill_at}"
        assert run_killed_writer(target, kill_at, tmp_path / "unused.txt") == -signal.SIGKILL, step
        if (target / "index.mds").exists():  # killed after publishing: the dataset is whole
            assert list(MDSDataset(str(target))) == complete, step
        (target / ".mds-tmp.000099.mds.deadbeef").parent.mkdir(exist_ok=True)
        (target / ".mds-tmp.000099.mds.deadbeef").write_bytes(b"half")  # as a kill mid-write leaves one
        with StreamingDatasetWriter(str(target), ["uid", "payload"], overwrite=True) as writer:
            writer.write_sample({"uid": b"fresh", "payload": b"start"})
        names = os.listdir(target)
        assert not any(is_temporary(name) for name in names), (step, names)
        assert sorted(names) == ["000000.mds", "index.mds", "mds_manifest.json"], (step, names)
        assert list(MDSDataset(str(target))) == [{"uid": b"fresh", "payload": b"start"}], step
