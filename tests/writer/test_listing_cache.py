"""Listings bypass fsspec's listing cache, so a file added after someone else listed is seen."""

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem
from fsspec.registry import _registry as fsspec_registry

from writer.storage import Storage


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
