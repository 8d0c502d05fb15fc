"""Crafted datasets cost `mds inspect | verify | head` time and memory bounded by what is really
stored: counts are checked against the files there, only regular files are opened, and a shard
is never inflated or read past what is plausible."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from writer import StreamingDatasetWriter
from writer import format as mds

from .helpers import seed_samples
from .test_crafted_indexes import assert_reported, run_mds

COMMANDS = [["head"], ["verify", "--quiet"], ["inspect"]]


def _gzip_stream(pieces: Iterator[bytes]) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join(compressor.compress(piece) for piece in pieces) + compressor.flush()


def _dataset(directory: Path, compression: str | None = None) -> Path:
    with StreamingDatasetWriter(str(directory), ["uid", "data"], compression=compression) as writer:
        writer.write_samples(seed_samples(), use_tqdm=False)
    return directory


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    return _dataset(tmp_path / "ds")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_gzip_index_claiming_60_million_empty_shards_is_refused_against_the_files_present(tmp_path, command):
    directory = _dataset(tmp_path / "gz", "gz")
    shards = 60_000_000
    head = struct.pack("<IIIqq", mds.MAGIC, mds.VERSION, shards, 0, 0)
    zeros = (bytes(1 << 20) for _ in range(2 * shards * 8 >> 20))
    tail = struct.pack("<i", 1) + struct.pack("<ii", 1, 3) + b"uid"
    index = _gzip_stream(iter([head, *zeros, bytes(2 * shards * 8 % (1 << 20)), tail]))
    assert len(index) < 2_000_000
    (directory / "index.mds.gz").write_bytes(index)
    result = run_mds(*command, str(directory), tmp_path=tmp_path)
    assert_reported(result, str(directory / "index.mds.gz"), "60000000 shards")


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _zero_device(path: Path) -> None:
    path.unlink()
    path.symlink_to("/dev/zero")


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("make", [_fifo, _zero_device])
@pytest.mark.parametrize("name", ["index.mds", "000000.mds"])
def test_an_index_or_shard_that_is_no_regular_file_is_refused_unopened(dataset_dir, tmp_path, command, make, name):
    make(dataset_dir / name)
    result = run_mds(*command, str(dataset_dir), tmp_path=tmp_path)
    if command == ["inspect"] and name != "index.mds":
        assert result[0] == 0  # inspect reads the index only
        return
    assert_reported(result, str(dataset_dir / name), "not a regular file")


def test_verify_never_reads_a_sparse_3_gib_shard_whole(dataset_dir, tmp_path):
    with open(dataset_dir / "000000.mds", "r+b") as shard:
        shard.truncate(3 << 30)  # sparse: 3 GiB that take no room on disk
    result = run_mds("verify", "--quiet", str(dataset_dir), tmp_path=tmp_path)
    assert_reported(result, str(dataset_dir / "000000.mds"), "3221225472 bytes stored")


def test_an_index_claiming_a_2_5_gb_sample_over_a_gzip_bomb_shard_is_reported_in_bounded_memory(tmp_path):
    directory = _dataset(tmp_path / "gz", "gz")
    claimed = 25 * 100 << 20
    head = struct.pack("<IIIqq", mds.MAGIC, mds.VERSION, 1, 1, claimed)
    fields = struct.pack("<i2i", 2, 3, 4) + b"uiddata"
    index = head + struct.pack("<q", 1) + struct.pack("<q", claimed) + struct.pack("<iq", 0, claimed) + fields
    (directory / "index.mds.gz").write_bytes(_gzip_stream(iter([index])))
    member = _gzip_stream(bytes(1 << 20) for _ in range(100))  # 100 MiB of zeros; 25 gzip members of it:
    bomb = member * 25  # 2.6 GB inflated
    assert len(bomb) < 3_000_000
    (directory / "000000.mds.gz").write_bytes(bomb)
    (directory / "mds_manifest.json").unlink()
    for command in (["head"], ["verify", "--quiet"]):
        assert_reported(run_mds(*command, str(directory), tmp_path=tmp_path), str(directory / "000000.mds.gz"))
