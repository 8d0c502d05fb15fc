"""A real full disk (a small tmpfs; the tests run as root in CI) while writing and while publishing."""

import os
import subprocess

import pytest

from writer import MDSDataset, StreamingDatasetWriter, WriterStorageError
from writer.merge import merge_datasets
from writer.published import PublishError
from writer.verify import verify

from ..faults import snapshot


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs mounted for the test: writes beyond it fail with ENOSPC."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root, as in CI): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def values(count: int, size: int) -> list[bytes]:
    return [os.urandom(size) for _ in range(count)]


def write(url: str, data: list[bytes], limit: int = 16 * 1024) -> None:
    with StreamingDatasetWriter(url, ["a"], shard_size_limit=limit) as writer:
        writer.write_samples(({"a": value} for value in data), use_tqdm=False)


def test_a_full_disk_while_writing_names_the_shard_and_leaves_nothing(small_disk):
    with pytest.raises(WriterStorageError, match=r"could not write shard .*small/ds/\d{6}\.mds: .*No space left"):
        write(str(small_disk / "ds"), values(60, 8 * 1024))  # 480 KiB into 256 KiB
    assert not any(name.endswith(".mds") or name.startswith(".mds-tmp") for name in os.listdir(small_disk / "ds"))
    write(str(small_disk / "ds"), values(10, 8 * 1024))  # space back: a smaller dataset writes fine
    assert verify(str(small_disk / "ds")).ok


def test_a_full_disk_while_publishing_keeps_the_previous_dataset_and_a_rerun_with_room_publishes(small_disk, tmp_path):
    # Sources on the big disk: placing them on the tmpfs is a copy (no hard link across filesystems).
    parts = [str(tmp_path / f"part{n}") for n in range(3)]
    for number, part in enumerate(parts):
        write(part, values(8 if number < 2 else 26, 4080))  # 4 KiB records: 32 KiB, 32 KiB, 104 KiB
    out = str(small_disk / "out")
    merge_datasets(parts[:2], out)
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * 128 * 1024)  # someone else's file: the disk is nearly full
    before = snapshot(out)
    with pytest.raises(PublishError, match="No space left on device") as failure:
        merge_datasets(parts, out)
    now = snapshot(out)
    if now == before:
        assert "is unchanged" in str(failure.value)
    else:
        assert "index.mds" not in now and "its index was removed" in str(failure.value)
    filler.unlink()  # room again: the same publish completes
    merge_datasets(parts, out)
    assert [s["a"] for s in MDSDataset(out)] == [s["a"] for p in parts for s in MDSDataset(p)]
    assert verify(out).ok
