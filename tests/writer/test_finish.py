"""Writer hardening: a background failure seen by finish(), fresh listings, strict arguments."""

import os
import threading
import time

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem
from fsspec.registry import _registry as fsspec_registry

from writer import StreamingDatasetWriter
from writer.compression import parse_compression
from writer.storage import Storage

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

    with pytest.raises(RuntimeError, match="disk full"):
        writer.finish()

    assert os.listdir(tmp_path) == []  # shard 0 was written, and is gone again: nothing half-published
    assert not any(thread.is_alive() for thread in _mds_threads() - threads_before)
    with pytest.raises(RuntimeError):
        writer.finish()  # still unusable, and does not touch anything
    with pytest.raises(RuntimeError):
        writer.write_sample(seed_samples()[0])


def test_finish_twice_keeps_the_published_dataset(tmp_path):
    with StreamingDatasetWriter(str(tmp_path), ["uid", "data"], shard_size_limit=100) as writer:
        writer.write_samples(seed_samples(), use_tqdm=False)
    published = sorted(os.listdir(tmp_path))
    with pytest.raises(RuntimeError, match="finished"):
        writer.finish()
    assert sorted(os.listdir(tmp_path)) == published


class CachingLocalFileSystem(LocalFileSystem):
    """A local filesystem that caches listings the way s3fs/gcsfs do (`dircache`, `invalidate_cache`)."""

    protocol = "cachinglocalfs"
    root_marker = "/"

    def ls(self, path, detail=False, **kwargs):
        path = self._strip_protocol(path)
        if path not in self.dircache:
            self.dircache[path] = super().ls(path, detail=True, **kwargs)
        entries = self.dircache[path]
        return entries if detail else [entry["name"] for entry in entries]

    def invalidate_cache(self, path=None):
        if path is None:
            self.dircache.clear()
        else:
            self.dircache.pop(self._strip_protocol(path), None)


@pytest.fixture
def caching_fs():
    fsspec.register_implementation(CachingLocalFileSystem.protocol, CachingLocalFileSystem, clobber=True)
    yield
    fsspec_registry.pop(CachingLocalFileSystem.protocol, None)
    CachingLocalFileSystem.clear_instance_cache()


def test_list_names_sees_a_file_added_after_someone_else_cached_the_listing(tmp_path, caching_fs):
    (tmp_path / "a").write_bytes(b"")
    storage = Storage(f"cachinglocalfs://{tmp_path}")
    storage.fs.ls(str(tmp_path))  # another user of the same (shared, cached) fsspec instance lists it
    (tmp_path / "b").write_bytes(b"")  # ... and then the directory changes behind the cache
    assert storage.list_names() == ["a", "b"]


@pytest.mark.parametrize("value", ["gz:", "gz:09", "gz:\u0663", "gz:10", "gz:-1", "gz: 1", "gz:1 ", "gz::1", "GZ"])
def test_malformed_compression_is_refused_naming_the_allowed_values(tmp_path, value):
    with pytest.raises(ValueError, match=r"allowed: None, 'gz' or 'gz:0' \.\.\. 'gz:9'"):
        parse_compression(value)
    with pytest.raises(ValueError, match="allowed"):
        StreamingDatasetWriter(str(tmp_path / "ds"), ["uid"], compression=value)
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("value", [None, "gz", *(f"gz:{level}" for level in range(10))])
def test_every_allowed_compression_is_accepted(value):
    compression = parse_compression(value)
    assert compression.is_none == (value is None)
    if value is not None:
        assert compression.name == (value if ":" in value else "gz:6")


def test_a_field_name_that_is_not_utf8_is_refused_by_the_constructor(tmp_path):
    with pytest.raises(ValueError, match=r"field name '\\ud800'.*UTF-8"):
        StreamingDatasetWriter(str(tmp_path / "ds"), ["uid", "\ud800"])
    assert not (tmp_path / "ds").exists()
