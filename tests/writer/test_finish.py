"""finish(): a background failure it is the first to see discards everything; a second call changes nothing."""

import os
import threading
import time

import pytest

from writer import StreamingDatasetWriter, WriterStorageError

from .helpers import fail_writing, seed_samples


def _mds_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name.startswith("mds-shard")}


def test_a_background_failure_seen_only_by_finish_discards_everything_and_stops_the_pool(tmp_path, monkeypatch):
    fail_writing(monkeypatch, "000001.mds")
    threads_before = _mds_threads()
    writer = StreamingDatasetWriter(str(tmp_path), ["uid", "data"], shard_size_limit=100, workers=2)
    writer.write_samples(seed_samples()[:7], use_tqdm=False)  # 26 B each: shards 0 and 1 are submitted
    deadline = time.monotonic() + 10
    while (writer._problem is None or not (tmp_path / "000000.mds").exists()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer._problem is not None and (tmp_path / "000000.mds").exists()  # the failure came before finish()

    with pytest.raises(WriterStorageError, match="disk full"):
        writer.finish()

    assert os.listdir(tmp_path) == []  # shard 0 was written, and is gone again: nothing half-published
    assert not any(thread.is_alive() for thread in _mds_threads() - threads_before)
    with pytest.raises(WriterStorageError):
        writer.finish()  # still unusable, and does not touch anything
    with pytest.raises(WriterStorageError):
        writer.write_sample(seed_samples()[0])


def test_finish_twice_keeps_the_published_dataset(tmp_path):
    with StreamingDatasetWriter(str(tmp_path), ["uid", "data"], shard_size_limit=100) as writer:
        writer.write_samples(seed_samples(), use_tqdm=False)
    published = sorted(os.listdir(tmp_path))
    with pytest.raises(RuntimeError, match="finished"):
        writer.finish()
    assert sorted(os.listdir(tmp_path)) == published
