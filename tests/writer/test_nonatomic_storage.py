"""Filesystems whose writes are not atomic (sftp, ftp, hdfs, webdav, ...): temporary name, then a rename."""

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFile, MemoryFileSystem
from fsspec.registry import _registry as fsspec_registry

from writer import MDSDataset, StreamingDatasetWriter, WriterStorageError
from writer.lock import LOCK_NAME
from writer.storage import Storage, is_temporary, single_put_is_atomic
from writer.verify import verify

from .helpers import digest, seed_samples


class NonAtomicFileSystem(MemoryFileSystem):
    """An in-memory filesystem whose writes become visible piece by piece, like sftp or ftp uploads.

    Every write first shows its first half under the target name (a reader at that moment sees a
    partial file) and records which names were ever partial; `mv` is a rename, as sftp's is.
    """

    protocol = "nonatomicfs"
    store: dict = {}  # not MemoryFileSystem's (shared with memory://)
    pseudo_dirs = [""]
    partial: list[str] = []  # every path that held a partial file at some moment
    renames: list[tuple[str, str]] = []
    fail_writes_to: str | None = None

    @classmethod
    def _strip_protocol(cls, path):
        if path.startswith("nonatomicfs://"):
            path = "memory://" + path[len("nonatomicfs://") :]
        return super()._strip_protocol(path)

    def pipe_file(self, path, value, *args, **kwargs):
        path = self._strip_protocol(path)
        self.store[path] = MemoryFile(self, path, bytes(value[: len(value) // 2]))
        self.partial.append(path)
        if self.fail_writes_to and self.fail_writes_to in path.rsplit("/", 1)[-1]:
            raise ConnectionError("connection reset in the middle of an upload")
        self.store[path] = MemoryFile(self, path, bytes(value))

    def _open(self, path, mode="rb", **kwargs):
        assert "w" not in mode and "a" not in mode, "writes go through pipe_file in this test filesystem"
        return super()._open(path, mode, **kwargs)

    def mv(self, path1, path2, **kwargs):
        path1, path2 = self._strip_protocol(path1), self._strip_protocol(path2)
        self.renames.append((path1, path2))
        self.store[path2] = self.store.pop(path1)


@pytest.fixture
def nonatomic_fs():
    fsspec.register_implementation(NonAtomicFileSystem.protocol, NonAtomicFileSystem, clobber=True)
    NonAtomicFileSystem.store.clear()
    NonAtomicFileSystem.partial.clear()
    NonAtomicFileSystem.renames.clear()
    NonAtomicFileSystem.fail_writes_to = None
    yield NonAtomicFileSystem
    NonAtomicFileSystem.store.clear()
    NonAtomicFileSystem.fail_writes_to = None
    fsspec_registry.pop(NonAtomicFileSystem.protocol, None)
    NonAtomicFileSystem.clear_instance_cache()


def _names(paths):
    return [path.rsplit("/", 1)[-1] for path in paths]


@pytest.mark.parametrize("compression", [None, "gz"])
def test_no_final_name_ever_holds_a_partial_file(nonatomic_fs, compression, tmp_path):
    url = "nonatomicfs://bucket/ds"
    with StreamingDatasetWriter(url, ["uid", "data"], shard_size_limit=300, compression=compression) as writer:
        writer.write_samples(seed_samples(), use_tqdm=False)

    partial = _names(nonatomic_fs.partial)
    assert partial and all(is_temporary(name) or name == LOCK_NAME for name in partial)
    final_names = sorted(Storage(url).list_names())
    assert not any(is_temporary(name) for name in final_names)  # every temporary was renamed into place
    assert sorted(_names(destination for _, destination in nonatomic_fs.renames)) == final_names
    assert all(is_temporary(name) for name in _names(source for source, _ in nonatomic_fs.renames))
    assert len(MDSDataset(url)) == 100 and verify(url).ok
    with StreamingDatasetWriter(str(tmp_path), ["uid", "data"], shard_size_limit=300) as local:
        local.write_samples(seed_samples(), use_tqdm=False)
    assert digest(url) == digest(str(tmp_path))


def test_a_failed_upload_leaves_neither_a_partial_final_file_nor_its_temporary(nonatomic_fs):
    storage = Storage("nonatomicfs://bucket/one")
    storage.make_root()
    nonatomic_fs.fail_writes_to = "index.mds"
    with pytest.raises(ConnectionError):
        storage.write_atomic("index.mds", b"x" * 1000)
    assert storage.list_names() == []


def test_a_failed_shard_upload_publishes_nothing_on_a_non_atomic_filesystem(nonatomic_fs):
    url = "nonatomicfs://bucket/failing"
    nonatomic_fs.fail_writes_to = "000002.mds"
    with pytest.raises(WriterStorageError, match="connection reset"):
        with StreamingDatasetWriter(url, ["uid", "data"], shard_size_limit=100) as writer:
            writer.write_samples(seed_samples(), use_tqdm=False)
    assert Storage(url).list_names() == []


@pytest.mark.parametrize(
    "protocol", ["s3", "s3a", ("s3", "s3a"), "gs", "gcs", ("gcs", "gs"), "az", "abfs", "abfss", "adl", "memory"]
)
def test_object_stores_write_with_one_put(protocol):
    assert single_put_is_atomic(protocol)


@pytest.mark.parametrize(
    "protocol",
    [
        "sftp",
        ("sftp", "ssh"),
        "ftp",
        "hdfs",
        ("hdfs", "arrow_hdfs"),
        "webdav",
        "dav",
        "smb",
        "dropbox",
        "nonatomicfs",
        "dir",
        "simplecache",
    ],
)
def test_other_filesystems_write_a_temporary_and_rename_it(protocol):
    assert not single_put_is_atomic(protocol)


def test_memory_urls_are_written_directly_and_read_back():
    url = "memory://mds-hardening/direct"
    try:
        with StreamingDatasetWriter(url, ["uid", "data"], shard_size_limit=300) as writer:
            writer.write_samples(seed_samples(), use_tqdm=False)
        assert len(MDSDataset(url)) == 100
    finally:
        Storage(url).remove_all()


@pytest.mark.parametrize("protocol", ["s3", "memory"])
def test_the_real_object_store_classes_keep_one_put(protocol):
    try:
        filesystem_class = fsspec.get_filesystem_class(protocol)
    except ImportError:
        pytest.skip(f"no fsspec implementation installed for {protocol}")
    assert single_put_is_atomic(filesystem_class.protocol)
