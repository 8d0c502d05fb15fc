"""A build of a partition that another live process is writing (an orphaned step of a failed run,
another build of it) waits for the partition's lock, saying what it waits for, and fails naming
the partition and the lock's holder once its wait is over."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from mds_assets.core.layout import staging_url
from mds_assets.core.partition_writer import PartitionLockedError, write_partition
from mds_assets.resources import MDSSettings
from writer.lock import LOCK_NAME, LockWait

HOLDER = """
import sys, time
from writer import StreamingDatasetWriter
with StreamingDatasetWriter(sys.argv[1], ["uid"], overwrite=True):
    time.sleep(float(sys.argv[2]))
"""


def hold_staging(settings: MDSSettings, key: str, seconds: float) -> subprocess.Popen:
    """Another process writing the partition's staging copy for `seconds`, its lock taken on return."""
    staging = Path(staging_url(settings.out_url, key))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(staging), str(seconds)])
    deadline = time.monotonic() + 30
    while not (staging / LOCK_NAME).exists():
        assert holder.poll() is None and time.monotonic() < deadline, "the holder did not take the lock"
        time.sleep(0.05)
    return holder


def build(settings: MDSSettings, wait: LockWait):
    (group, *_) = settings.raw_groups()
    return write_partition(
        group,
        settings.selections(),
        settings.out_url,
        settings.shard_size_limit,
        settings.compression,
        lock_wait=wait,
    )


def test_a_partition_another_process_writes_is_waited_for_then_built(settings: MDSSettings) -> None:
    key = settings.raw_groups()[0].partition_key
    holder = hold_staging(settings, key, seconds=1.5)
    reports: list[str] = []
    try:
        built = build(settings, LockWait(30, reports.append))
    finally:
        holder.wait(timeout=30)
    assert Path(built.url, "index.mds").exists()
    assert reports and f"pid {holder.pid}" in reports[0], reports  # the wait said what it waited for


def test_a_partition_written_elsewhere_for_longer_than_the_wait_fails_naming_it_and_the_holder(
    settings: MDSSettings,
) -> None:
    key = settings.raw_groups()[0].partition_key
    holder = hold_staging(settings, key, seconds=60)
    try:
        with pytest.raises(PartitionLockedError) as refused:
            build(settings, LockWait(1, lambda message: None))
    finally:
        holder.kill()
        holder.wait(timeout=30)
    message = str(refused.value)
    assert f"partition {key} is locked by another process" in message
    assert f"pid {holder.pid}" in message and "StreamingDatasetWriter" in message
    assert not Path(settings.out_url, "partitions", key, "index.mds").exists()
