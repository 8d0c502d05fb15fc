"""The only place that touches fsspec: naming, reading, atomic publishing and listing of files.

Atomicity is what makes a dataset crash-safe. On a local disk a file is written under a
temporary name and renamed into place (`os.replace` is atomic). On an object store (s3, gs,
az/abfs/adl) and memory:// a single PUT is atomic by itself (an object is visible whole or not
at all), so files are written straight to their final names. Every other filesystem (sftp,
ftp, hdfs, webdav, ...) may show an upload half done, so there too a file is written under a
temporary name and moved into place with `fs.mv` (a server-side rename on those filesystems).
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from .secrets import redact, with_password

try:
    import fcntl
except ImportError:  # Windows: no flock, so no conditional replace of a local file
    fcntl = None  # type: ignore[assignment]


class WriterStorageError(OSError):
    """A storage step of a `StreamingDatasetWriter` failed: a shard, the index or the manifest could
    not be written. One type whatever the moment the failure is seen (the write that queued the
    shard, a later write, or `finish()`), so a caller needs one `except`; the message names the file."""


TEMPORARY_PREFIX = ".mds-tmp."

# The test seam for fault injection: when set, it is called as `before_change(operation, url)`
# before every change this module makes to storage, and may raise to simulate that step
# failing. It is None in normal use; tests set it to fail the k-th change (tests/faults.py).
before_change: Callable[[str, str], None] | None = None


def _changing(operation: str, url: str) -> None:
    if before_change is not None:
        before_change(operation, url)


@contextmanager
def _naming(where: str) -> Iterator[None]:
    """A failed write's OSError names no file (`[Errno 28] No space left on device`): give it the
    one being changed."""
    try:
        yield
    except OSError as error:
        if error.filename is not None or error.errno is None:
            raise
        raise OSError(error.errno, error.strerror or str(error), where) from error


def is_temporary(name: str) -> bool:
    """True for a file a writer was still writing when it stopped."""
    return name.startswith(TEMPORARY_PREFIX)


# Protocols on which a PUT can be made conditional on the object's ETag (`If-Match`).
CONDITIONAL_PUT_PROTOCOLS = frozenset({"s3", "s3a"})


def _protocol_names(protocol: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


# Protocols on which one PUT of a whole file is atomic: an object appears whole or not at all.
ATOMIC_PUT_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory"})


def single_put_is_atomic(protocol: str | tuple[str, ...] | list[str]) -> bool:
    """True when every protocol name of a filesystem is an object store's (or memory://).

    Anything else (sftp, ftp, hdfs, webdav, smb, caching or wrapping filesystems, ...) may show a
    half-written file under its final name, so `Storage.write_atomic` writes a temporary and renames it.
    """
    names = _protocol_names(protocol)
    return bool(names) and all(name in ATOMIC_PUT_PROTOCOLS for name in names)


class Storage:
    """One dataset directory on any fsspec filesystem."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = str(url)
        self.options = storage_options
        self.fs, self.root = fsspec.core.url_to_fs(with_password(self.url), **(storage_options or {}))
        self.is_local = isinstance(self.fs, LocalFileSystem)
        self.root = self.root.rstrip("/") or "/"

    def path(self, name: str) -> str:
        return posixpath.join(self.root, name)

    def describe(self, name: str) -> str:
        """A path for messages: the URL the user gave plus the file name, never options or secrets."""
        return posixpath.join(redact(self.url).rstrip("/"), name)

    def make_root(self) -> None:
        _changing("makedirs", self.url)
        with _naming(self.describe("")):
            self.fs.makedirs(self.root, exist_ok=True)

    def exists(self, name: str) -> bool:
        return bool(self.fs.exists(self.path(name)))

    def refuse_unless_regular(self, name: str) -> None:
        """On a local disk, only a regular file is opened: a FIFO blocks its reader forever, a
        device like /dev/zero is read without end (links are followed to what they point to)."""
        if not self.is_local:
            return
        try:
            mode = os.stat(self.path(name)).st_mode
        except OSError:
            return  # opening it reports it, named
        if not stat.S_ISREG(mode):
            kind = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFDIR: "a directory"}
            what = kind.get(stat.S_IFMT(mode), "a special file")
            raise OSError(errno.EINVAL, f"{self.describe(name)}: not a regular file ({what}), not opened")

    def read(self, name: str) -> bytes:
        self.refuse_unless_regular(name)
        try:
            return bytes(self.fs.cat_file(self.path(name)))
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.describe(name)}: no such file") from None

    def read_range(self, name: str, start: int, end: int) -> bytes:
        self.refuse_unless_regular(name)
        try:
            return bytes(self.fs.cat_file(self.path(name), start=start, end=end))
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.describe(name)}: no such file") from None

    def size(self, name: str) -> int:
        try:
            return int(self.fs.size(self.path(name)))
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.describe(name)}: no such file") from None

    def list_names(self) -> list[str]:
        """Names of the files directly in the directory (an absent directory has none)."""
        if self.is_local and (scanned := self._scan()) is not None:
            return sorted(entry.name for entry in scanned)
        self.fs.invalidate_cache(self.root)  # before, so that a listing cached by anyone is never seen
        try:
            entries = self.fs.ls(self.root, detail=False)
        except FileNotFoundError:
            return []
        return sorted(posixpath.basename(entry.rstrip("/")) for entry in entries)

    def entries(self) -> dict[str, tuple[str, int]]:
        """`{name: (type, size)}` of what is directly in the directory, from one listing
        (type is "file" or "directory"; an absent directory has none)."""
        if self.is_local and (scanned := self._scan()) is not None:
            return {entry.name: (kind, size) for entry, kind, size, _mtime in _with_status(scanned)}
        self.fs.invalidate_cache(self.root)
        try:
            listed = self.fs.ls(self.root, detail=True)
        except FileNotFoundError:
            return {}
        return {
            posixpath.basename(entry["name"].rstrip("/")): (entry.get("type", "file"), int(entry.get("size") or 0))
            for entry in listed
        }

    def stamps(self) -> dict[str, str]:
        """`{name: "size|modified|etag"}` of the files directly in the directory, from one listing:
        a file's stamp changes when it is written again (a byte changed in place included)."""
        if self.is_local and (scanned := self._scan()) is not None:  # as fsspec's: no ETag on a local disk
            return {
                entry.name: f"{size or ''}|{mtime or ''}|"
                for entry, kind, size, mtime in _with_status(scanned)
                if kind == "file"
            }
        self.fs.invalidate_cache(self.root)
        try:
            listed = self.fs.ls(self.root, detail=True)
        except FileNotFoundError:
            return {}
        return {
            posixpath.basename(entry["name"].rstrip("/")): "|".join(
                str(entry.get(key) or "") for key in ("size", _modified_key(entry), _etag_key(entry))
            )
            for entry in listed
            if entry.get("type", "file") == "file"
        }

    def _scan(self) -> list[os.DirEntry[str]] | None:
        """A local directory's entries straight from `os.scandir` (None: not a directory, left
        to fsspec). fsspec's local `ls` costs several times more per entry (each path
        normalised, each entry stat-ed into a dict), which adds up over the tens of thousands
        of shards every publish and check lists."""
        try:
            with os.scandir(self.root) as listing:
                return list(listing)
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            return None

    def sizes(self) -> dict[str, int]:
        """`{name: size}` of the files directly in the directory, from one listing."""
        return {name: size for name, (kind, size) in self.entries().items() if kind == "file"}

    def write_atomic(self, name: str, data: bytes | bytearray | memoryview) -> None:
        """Write `name` so that no reader ever sees it half-written (see the module docstring)."""
        _changing("write", self.describe(name))
        with _naming(self.describe(name)):
            self._write(name, data)

    def write_pieces_atomic(self, name: str, pieces: list[bytes]) -> None:
        """`write_atomic` of `b"".join(pieces)`; on a local disk without joining them (one
        gathered write per batch of pieces: no copy of a shard in this process's memory)."""
        if not self.is_local or not hasattr(os, "writev"):
            self.write_atomic(name, b"".join(pieces))
            return
        _changing("write", self.describe(name))
        final = self.path(name)
        temporary = self.path(f"{TEMPORARY_PREFIX}{name}.{uuid.uuid4().hex}")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _write_gathered(descriptor, pieces)
            finally:
                os.close(descriptor)
            os.replace(temporary, final)
        except BaseException:
            _remove_quietly(temporary)
            raise

    def _write(self, name: str, data: bytes | bytearray | memoryview) -> None:
        if self.is_local:
            final = self.path(name)
            temporary = self.path(f"{TEMPORARY_PREFIX}{name}.{uuid.uuid4().hex}")
            try:
                with open(temporary, "wb") as file:
                    file.write(data)
                os.replace(temporary, final)
            except BaseException:
                _remove_quietly(temporary)
                raise
        elif single_put_is_atomic(self.fs.protocol):
            # An object store: one PUT is atomic, so the final name is written directly.
            self.fs.pipe_file(self.path(name), bytes(data) if not isinstance(data, bytes) else data)
        else:
            # sftp, ftp, hdfs, webdav, ...: an upload may be seen half done, so write a temporary and
            # `fs.mv` it into place (a server-side rename there); a failed attempt removes its temporary.
            temporary = self.path(f"{TEMPORARY_PREFIX}{name}.{uuid.uuid4().hex}")
            try:
                self.fs.pipe_file(temporary, bytes(data) if not isinstance(data, bytes) else data)
                self.fs.mv(temporary, self.path(name))
            except BaseException:
                try:
                    self.fs.rm_file(temporary)
                except Exception:  # best effort; the next writer removes leftovers (.mds-tmp.*)
                    pass
                raise

    def remove(self, name: str) -> None:
        """Delete `name` if it is there."""
        _changing("remove", self.describe(name))
        try:
            self.fs.rm_file(self.path(name))
        except FileNotFoundError:
            pass

    def remove_all(self) -> None:
        """Delete the directory and everything in it, if it is there."""
        _changing("remove_all", self.url)
        try:
            self.fs.rm(self.root, recursive=True)
        except FileNotFoundError:
            pass

    def remove_if_empty(self) -> None:
        """Delete the directory if nothing is in it (object stores have no empty directories)."""
        if self.is_local and not self.list_names():
            _changing("remove_all", self.url)
            try:
                os.rmdir(self.root)
            except OSError:
                pass  # gone, or another build put something in it meanwhile

    def link_or_copy(self, source: Storage, source_name: str, name: str) -> str:
        """Place `source/source_name` at `name` without re-encoding; returns how it was done.

        Local: a hard link (no bytes copied, the partition's file stays intact); elsewhere a
        server-side copy on the same filesystem (no bytes through this process).
        """
        _changing("place", self.describe(name))
        with _naming(self.describe(name)):
            return self._link_or_copy(source, source_name, name)

    def _link_or_copy(self, source: Storage, source_name: str, name: str) -> str:
        src, dst = source.path(source_name), self.path(name)
        if self.is_local and source.is_local:
            temporary = self.path(f"{TEMPORARY_PREFIX}{name}.{uuid.uuid4().hex}")
            try:
                how = _hard_link_or_copy(src, temporary)
                os.replace(temporary, dst)
            except BaseException:
                _remove_quietly(temporary)
                raise
            return how
        if type(source.fs) is not type(self.fs):
            self._write(name, source.read(source_name))
            return "copy through this process"
        if single_put_is_atomic(self.fs.protocol):
            self.fs.copy(src, dst)
        else:  # a copy may be seen half done here: copy to a temporary, then rename
            temporary = self.path(f"{TEMPORARY_PREFIX}{name}.{uuid.uuid4().hex}")
            self.fs.copy(src, temporary)
            self.fs.mv(temporary, dst)
        return "server-side copy"

    def create_exclusive(self, name: str, data: bytes) -> bool:
        """Create `name` only if it does not exist, atomically; False when it already does.

        Local: O_CREAT|O_EXCL. Elsewhere: fsspec's `mode="create"` (on S3 a conditional PUT,
        `If-None-Match: *`, which the server decides atomically).
        """
        _changing("create", self.describe(name))
        with _naming(self.describe(name)):
            return self._create_exclusive(name, data)

    def _create_exclusive(self, name: str, data: bytes) -> bool:
        if self.is_local:
            try:
                descriptor = os.open(self.path(name), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            try:
                with os.fdopen(descriptor, "wb") as file:
                    file.write(data)
            except BaseException:
                _remove_quietly(self.path(name))
                raise
            return True
        try:
            self.fs.pipe_file(self.path(name), data, mode="create")
        except FileExistsError:
            return False
        return True

    @property
    def can_replace_if_unchanged(self) -> bool:
        """True where `replace_if_unchanged` exists: local disks with flock, and S3."""
        if self.is_local:
            return fcntl is not None
        return bool(CONDITIONAL_PUT_PROTOCOLS & set(_protocol_names(self.fs.protocol)))

    def replace_if_unchanged(self, name: str, expected: bytes, data: bytes) -> bool:
        """Replace `name` by `data` only if it still holds `expected`; False if it changed or is gone.

        A compare-and-swap: of callers that read the same `expected`, at most one succeeds, which
        is what lets many processes take over one stale lock safely. Local: under an exclusive
        flock of the open file, checked to still be the file at `name`, replaced by a rename (a
        caller killed inside holds no flock any more: the kernel drops it with the process).
        S3: a PUT conditional on the ETag seen before the read (`If-Match`), decided by the server.
        """
        if not self.can_replace_if_unchanged:
            raise NotImplementedError(f"{self.describe(name)}: no conditional replace on this filesystem")
        _changing("replace", self.describe(name))
        if self.is_local:
            return self._replace_local_if_unchanged(name, expected, data)
        return self._replace_object_if_unchanged(name, expected, data)

    def _replace_local_if_unchanged(self, name: str, expected: bytes, data: bytes) -> bool:
        path = self.path(name)
        try:
            descriptor = os.open(path, os.O_RDWR)  # read-write: NFS grants exclusive locks only to writers
        except (FileNotFoundError, PermissionError):
            return False
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # another process is replacing it at this moment
            if not _still_at(descriptor, path) or _read_whole(descriptor) != expected:
                return False
            self._write(name, data)
            return True
        finally:
            os.close(descriptor)  # drops the flock

    def _replace_object_if_unchanged(self, name: str, expected: bytes, data: bytes) -> bool:
        path = self.path(name)
        self.fs.invalidate_cache(path)
        try:
            etag = self.fs.info(path)["ETag"]  # before the read: a later version fails the If-Match below
            if bytes(self.fs.cat_file(path)) != expected:
                return False
            self.fs.pipe_file(path, data, IfMatch=etag)
        except FileNotFoundError:
            return False
        except OSError as error:
            if _precondition_failed(error):
                return False
            raise
        return True


def _still_at(descriptor: int, path: str) -> bool:
    """True when the open file is the one `path` names (not replaced or removed since it was opened)."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(descriptor)
    return (opened.st_dev, opened.st_ino) == (now.st_dev, now.st_ino)


def _read_whole(descriptor: int) -> bytes:
    data = bytearray()
    while chunk := os.pread(descriptor, 1 << 16, len(data)):
        data += chunk
    return bytes(data)


def _precondition_failed(error: OSError) -> bool:
    """s3fs turns HTTP 412 into OSError(EINVAL); the botocore error it came from says which."""
    response = getattr(error.__cause__, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("PreconditionFailed", "412") or (error.errno == errno.EINVAL and "Precondition" in str(error))


_GATHER = 1024  # IOV_MAX on Linux and macOS


def _write_gathered(descriptor: int, pieces: list[bytes]) -> None:
    for start in range(0, len(pieces), _GATHER):
        batch = pieces[start : start + _GATHER]
        written = os.writev(descriptor, batch)
        if written != sum(map(len, batch)):  # a short write (rare on a regular file): write the rest
            rest = memoryview(b"".join(batch))[written:]
            while rest:
                rest = rest[os.write(descriptor, rest) :]


def _hard_link_or_copy(source: str, destination: str) -> str:
    try:
        os.link(source, destination)
        return "hard link"
    except OSError:  # another filesystem, or links not supported
        with open(source, "rb") as reading, open(destination, "wb") as writing:
            while chunk := reading.read(1 << 24):
                writing.write(chunk)
        return "copy"


def _with_status(entries: list[os.DirEntry[str]]) -> Iterator[tuple[os.DirEntry[str], str, int, float]]:
    """(entry, type, size, modified) as fsspec's local listing gives them: the type of the entry
    itself ("other" for a link, a FIFO, ...), the size of what a link points to."""
    for entry in entries:
        try:
            status = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # removed since it was listed
            continue
        mode = status.st_mode
        kind = "directory" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"
        size = _target_size(entry) if stat.S_ISLNK(mode) else status.st_size
        yield entry, kind, size, status.st_mtime


def _target_size(entry: os.DirEntry[str]) -> int:
    try:
        return entry.stat(follow_symlinks=True).st_size
    except OSError:  # a link to nothing
        return 0


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _modified_key(entry: dict[str, Any]) -> str:
    """Where a listing entry keeps its modification time (local, s3, gcs, ...)."""
    return next((key for key in ("mtime", "LastModified", "updated", "last_modified", "created") if key in entry), "")


def _etag_key(entry: dict[str, Any]) -> str:
    return next((key for key in ("ETag", "etag", "md5Hash") if key in entry), "")
