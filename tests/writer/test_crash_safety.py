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
    import sys, itertools
    from writer import StreamingDatasetWriter
    writer = StreamingDatasetWriter(sys.argv[1], ["uid", "payload"], shard_size_limit=1 << 16)
    for number in itertools.count():
        writer.write_sample({"uid": str(number).encode(), "payload": bytes(1000)})
""")


def test_kill_9_at_any_moment_leaves_no_index_and_the_next_writer_cleans_up(tmp_path):
    target = tmp_path / "dataset"
    process = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(os.listdir(target) if target.exists() else []) < 5:
            time.sleep(0.02)
        assert target.exists() and len(os.listdir(target)) >= 5, "the writer did not get going"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert not (target / "index.mds").exists()
    for leftover in range(3):  # a leftover temporary, as a kill mid-write leaves one
        (target / f".mds-tmp.00009{leftover}.mds.deadbeef").write_bytes(b"half")

    with StreamingDatasetWriter(str(target), ["uid", "payload"]) as writer:
        writer.write_sample({"uid": b"fresh", "payload": b"start"})
    names = os.listdir(target)
    assert not any(is_temporary(name) for name in names)
    assert sorted(names) == ["000000.mds", "index.mds", "mds_manifest.json"]
    assert list(MDSDataset(str(target))) == [{"uid": b"fresh", "payload": b"start"}]
