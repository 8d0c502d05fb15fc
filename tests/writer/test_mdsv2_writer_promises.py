"""`MDSWriter` keeps this package's writer promises: index last, nothing published on an
exception or a kill, one writer per folder, background failures raised with their cause,
bad samples refused naming sample and column."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.streaming_reference import mds_writer_module
from writer import MDSWriter
from writer.lock import DatasetLockedError
from writer.storage import Storage

COLUMNS = {"text": "str", "n": "int64"}


def rows(count, start=0):
    return [{"text": f"sample {number}", "n": number} for number in range(start, start + count)]


def write(url, samples, **options):
    with MDSWriter(out=url, columns=COLUMNS, **options) as writer:
        for sample in samples:
            writer.write(sample)
    return writer


def test_an_exception_in_the_block_publishes_nothing_and_removes_the_shards(tmp_path):
    with pytest.raises(RuntimeError, match="the caller's own"):
        with MDSWriter(out=str(tmp_path), columns=COLUMNS, size_limit=200) as writer:
            for sample in rows(50):
                writer.write(sample)
            raise RuntimeError("the caller's own")
    assert sorted(os.listdir(tmp_path)) == []  # no index, no shard, no lock


def test_mosaicml_streaming_publishes_an_index_on_an_exception_where_we_do_not(tmp_path):
    with pytest.raises(RuntimeError):
        with mds_writer_module().MDSWriter(out=str(tmp_path / "theirs"), columns=COLUMNS) as writer:
            writer.write(rows(1)[0])
            raise RuntimeError("stop")
    assert (tmp_path / "theirs" / "index.json").exists()


KILLED_WRITER = """
import sys, time
from writer import MDSWriter
writer = MDSWriter(out=sys.argv[1], columns={"text": "str", "n": "int64"}, size_limit=300)
number = 0
while True:
    writer.write({"text": f"sample {number}", "n": number})
    number += 1
    if number % 50 == 0:
        time.sleep(0.01)
"""


def test_a_writer_killed_mid_write_publishes_nothing_and_the_next_one_takes_over(tmp_path):
    url = str(tmp_path / "ds")
    process = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, url])
    try:
        deadline = time.monotonic() + 60
        while len([name for name in os.listdir(tmp_path / "ds")] if (tmp_path / "ds").exists() else []) < 10:
            assert time.monotonic() < deadline, "the writer wrote no shard in 60 s"
            assert process.poll() is None, "the writer exited"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert not (tmp_path / "ds" / "index.json").exists()
    assert (tmp_path / "ds" / ".mds-lock").exists()  # left by the killed process

    write(url, rows(3))  # the lock of a process gone is taken over; its shards are replaced
    assert sorted(os.listdir(tmp_path / "ds")) == ["index.json", "shard.00000.mds"]
    assert json.loads((tmp_path / "ds" / "index.json").read_text())["shards"][0]["samples"] == 3


def test_one_writer_per_folder(tmp_path):
    first = MDSWriter(out=str(tmp_path), columns=COLUMNS)
    with pytest.raises(DatasetLockedError, match=r"locked by an MDSWriter \(pid"):
        MDSWriter(out=str(tmp_path), columns=COLUMNS)
    first.finish()
    write(str(tmp_path), rows(1), exist_ok=True)  # released by finish()


def test_a_dataset_is_replaced_only_when_asked(tmp_path):
    write(str(tmp_path), rows(100), size_limit=300)
    with pytest.raises(FileExistsError, match="index.json exists.*exist_ok=True"):
        MDSWriter(out=str(tmp_path), columns=COLUMNS)
    write(str(tmp_path), rows(2), exist_ok=True)
    assert sorted(os.listdir(tmp_path)) == ["index.json", "shard.00000.mds"]  # the old shards are gone


@pytest.mark.parametrize(
    "sample, error, message",
    [
        ({"text": "x"}, KeyError, "sample 3 has no column 'n' \\(it has: text\\)"),
        ({"text": "x", "n": "7"}, TypeError, "sample 3, column 'n' \\(int64\\): expected an integer, got str"),
        ({"text": 5, "n": 1}, TypeError, "sample 3, column 'text' \\(str\\): expected str, got int"),
        ({"text": "x", "n": b"\x01"}, ValueError, "sample 3, column 'n' \\(int64\\): 1 bytes given, .* exactly 8"),
        ({"text": "x", "n": 1 << 63}, ValueError, "sample 3, column 'n' \\(int64\\): .* does not fit"),
        (["text", "n"], TypeError, "sample 3 is a list, not a mapping"),
        ({"text": "\ud800", "n": 1}, ValueError, "sample 3, column 'text' \\(str\\): 'utf-8' codec can't encode"),
    ],
)
def test_a_bad_sample_is_refused_naming_it_and_keeps_what_came_before(tmp_path, sample, error, message):
    with MDSWriter(out=str(tmp_path), columns=COLUMNS) as writer:
        for good in rows(3):
            writer.write(good)
        with pytest.raises(error, match=message):
            writer.write(sample)
        writer.write(rows(1, start=3)[0])
    assert json.loads((tmp_path / "index.json").read_text())["shards"][0]["samples"] == 4


def test_a_failed_shard_write_is_raised_with_its_cause_and_publishes_nothing(tmp_path, monkeypatch):
    real = Storage.write_pieces_atomic

    def failing(self, name, pieces):
        if name == "shard.00001.mds":
            raise OSError(28, "No space left on device")
        real(self, name, pieces)

    monkeypatch.setattr(Storage, "write_pieces_atomic", failing)
    writer = MDSWriter(out=str(tmp_path), columns=COLUMNS, size_limit=300)
    with pytest.raises(
        RuntimeError, match="failed in the background: could not write shard .*shard.00001.mds.*No space"
    ) as caught:
        for sample in rows(10_000):
            writer.write(sample)
        writer.finish()
    assert isinstance(caught.value.__cause__, OSError)
    writer.abort()
    assert not (tmp_path / "index.json").exists()
    assert not (tmp_path / ".mds-lock").exists()


def test_settings_are_checked_before_any_file(tmp_path):
    url = str(tmp_path / "ds")
    for options, error, message in [
        ({"compression": "lz4"}, ValueError, "unknown compression 'lz4'"),
        ({"compression": "zstd:23"}, ValueError, "bad compression level"),
        ({"hashes": ["sha256", "sha1"]}, ValueError, "sorted order"),
        ({"hashes": ["crc32"]}, ValueError, "unknown hash 'crc32'"),
        ({"size_limit": "64 parsecs"}, ValueError, "not a size"),
        ({"size_limit": 1 << 32}, ValueError, "less than 2\\*\\*32"),
        ({"columns": {"x": "int128"}}, ValueError, "column 'x': unknown encoding 'int128'"),
        ({"out": (url, "s3://b/x")}, TypeError, "out must be one URL"),
        ({"keep_locals": True}, ValueError, "unknown MDSWriter argument"),
    ]:
        arguments = {"out": url, "columns": COLUMNS, **options}
        with pytest.raises(error, match=message):
            MDSWriter(**arguments)
    assert not (tmp_path / "ds").exists()


def test_size_limit_strings_are_read_as_mosaicml_streaming_reads_them(tmp_path):
    writer = write(str(tmp_path), rows(1), size_limit="64mb")
    assert writer.size_limit == 64 << 20
    assert json.loads((tmp_path / "index.json").read_text())["shards"][0]["size_limit"] == 64 << 20
