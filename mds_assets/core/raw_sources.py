"""Raw batches at any fsspec URL: which there are, what they look like now, and their records.

Three layouts: JSONL batches (each `*.jsonl` / `*.jsonl.gz` file directly under the raw URL,
one JSON object a line), Parquet batches (each `*.parquet` file, one row a record; needs the
`parquet` extra) and file-tree batches (each top-level directory, ImageFolder style: every
file in it is a sample `{path, label, content}` with `label` its parent directory's name).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from collections.abc import Generator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import fsspec
import orjson
from fsspec.implementations.local import LocalFileSystem

JSONL_SUFFIXES = (".jsonl.gz", ".jsonl")
PARQUET_SUFFIX = ".parquet"
BATCH_FILE_SUFFIXES = JSONL_SUFFIXES + (PARQUET_SUFFIX,)  # what a batch file is; a directory is a file-tree batch
_UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")
PARQUET_ROWS_PER_READ = 4096  # rows decoded at a time: memory stays bounded whatever the file's size
# Deepest JSON value accepted in a record. Deeper values are refused naming batch, line and field:
# Python's repr/json.dumps/json.loads (the profile's preview, the json encoding, a reader's
# decoder) hit the interpreter's recursion limit somewhere under 1000 levels, depending on the
# stack they are called from, and orjson itself refuses more than 1024.
MAX_NESTING = 256


def partition_key_for_batch(batch_name: str) -> str:
    """The batch's stem with anything unsafe replaced; a short hash keeps changed names unique."""
    stem = batch_name
    for suffix in BATCH_FILE_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    key = _UNSAFE_CHARACTERS.sub("_", stem).lstrip(".-")[:100] or "batch"
    if key != stem:
        key = f"{key}-{hashlib.sha1(batch_name.encode()).hexdigest()[:8]}"
    return key


class RawDataError(ValueError):
    """Unreadable raw input; the message names the batch and line (or file)."""


@dataclass(frozen=True)
class RawBatch:
    name: str  # the file or directory name under the raw URL
    url: str
    layout: str  # "jsonl", "parquet", "filetree", or "refused" (a link out of the raw root: reading it fails)
    fingerprint: str  # changes when the batch's content does (size, etag or mtime of its files)
    size: int  # bytes
    problem: str = ""  # why a "refused" batch cannot be read

    @cached_property  # sorted, grouped and checked by: computed once per listed file
    def partition_key(self) -> str:
        return partition_key_for_batch(self.name)


def list_batches(raw_url: str, storage_options: dict[str, Any] | None = None) -> list[RawBatch]:
    """Every batch under `raw_url`, sorted by partition key."""
    fs, root = fsspec.core.url_to_fs(raw_url, **(storage_options or {}))
    fs.invalidate_cache(root)  # a sensor lists again and again: always ask the store
    try:
        entries = fs.ls(root, detail=True)
    except FileNotFoundError:
        raise RawDataError(f"raw URL {raw_url} does not exist") from None
    batches = []
    for entry in entries:
        name = posixpath.basename(entry["name"].rstrip("/"))
        url = posixpath.join(raw_url.rstrip("/"), name)
        if entry.get("islink"):  # local filesystems only: object stores have no links
            entry = _follow_top_level_link(root, entry, name)
            if entry is None:
                continue
            if entry["type"] == "refused":
                batches.append(RawBatch(name, url, "refused", _fingerprint([entry]), 0, entry["problem"]))
                continue
        if entry["type"] == "directory":
            files = fs.find(entry["name"], detail=True)
            fingerprint = _fingerprint(list(files.values()))
            size = sum(file.get("size") or 0 for file in files.values())
            batches.append(RawBatch(name, url, "filetree", fingerprint, size))
        elif name.endswith(JSONL_SUFFIXES):
            batches.append(RawBatch(name, url, "jsonl", _fingerprint([entry]), entry.get("size") or 0))
        elif name.endswith(PARQUET_SUFFIX):
            batches.append(RawBatch(name, url, "parquet", _fingerprint([entry]), entry.get("size") or 0))
    batches.sort(key=lambda batch: batch.partition_key)
    _refuse_key_collisions(batches)
    return batches


def _follow_top_level_link(root: str, entry: dict, name: str) -> dict | None:
    """A link directly under the raw root: what it points to, when that is inside the raw root; a
    "refused" entry naming it when it leaves the root or is broken; None when it is no batch."""
    target = os.path.realpath(entry["name"])
    is_batch_name = name.endswith(BATCH_FILE_SUFFIXES)
    if not os.path.exists(target) or not _is_inside(target, os.path.realpath(root)):
        if not (is_batch_name or os.path.isdir(target)):
            return None  # a link to some other file (a README, say) is no batch, like the file itself
        where = "which does not exist" if not os.path.exists(target) else f"outside the raw root {root}"
        return {
            "name": entry["name"],
            "type": "refused",
            "size": None,
            "ETag": target,
            "mtime": entry.get("mtime"),
            "problem": f"batch {name}: a symbolic link to {target}, {where}; links are followed only "
            "when they stay inside the raw root",
        }
    status = os.stat(target)
    kind = "directory" if os.path.isdir(target) else "file"
    return {"name": entry["name"], "type": kind, "size": status.st_size, "mtime": status.st_mtime}


def _is_inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def read_records(
    batch: RawBatch, storage_options: dict[str, Any] | None = None
) -> Generator[tuple[int, dict], None, None]:
    """(line number from 1, record) for each sample of the batch, streamed (for Parquet, the row
    number); `close()` closes the file however much of it was read."""
    readers = {"jsonl": _read_jsonl, "parquet": _read_parquet, "filetree": _read_file_tree, "refused": _refuse}
    return readers[batch.layout](batch, storage_options)


def _refuse(batch: RawBatch, storage_options: dict[str, Any] | None) -> Generator[tuple[int, dict], None, None]:
    raise RawDataError(batch.problem)
    yield  # a generator, like the other readers: it fails when read, not when asked for


def _read_jsonl(batch: RawBatch, storage_options: dict[str, Any] | None) -> Generator[tuple[int, dict], None, None]:
    compression = "gzip" if batch.name.endswith(".gz") else None
    with fsspec.open(batch.url, "rb", compression=compression, **(storage_options or {})) as lines:
        line_number = 0
        try:
            for line_number, line in enumerate(lines, start=1):
                if line.strip():
                    yield line_number, _parse_line(batch, line_number, line)
        except (EOFError, OSError) as error:
            raise RawDataError(f"batch {batch.name}, line {line_number + 1}: unreadable ({error})") from None


def _parse_line(batch: RawBatch, line_number: int, line: bytes) -> dict:
    # orjson: about twice as fast as the standard library on typical lines, and strict UTF-8
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise RawDataError(f"batch {batch.name}, line {line_number}: not valid JSON ({error})") from None
    if not isinstance(record, dict):
        raise RawDataError(f"batch {batch.name}, line {line_number}: a JSON {type(record).__name__}, not an object")
    if line.count(b"[") + line.count(b"{") > MAX_NESTING:  # cheap (C) bound on the depth: most lines stop here
        for name, value in record.items():
            if _nesting(value) > MAX_NESTING:
                raise RawDataError(
                    f"batch {batch.name}, line {line_number}, field {name!r}: nested deeper than {MAX_NESTING} levels"
                )
    return record


def _nesting(value: Any) -> int:
    """How many arrays/objects deep `value` goes (0 for a scalar); stops counting past MAX_NESTING."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_NESTING:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _read_parquet(batch: RawBatch, storage_options: dict[str, Any] | None) -> Generator[tuple[int, dict], None, None]:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise RawDataError(
            f"batch {batch.name}: Parquet batches need the parquet extra (pip install 'mds-assets[parquet]')"
        ) from None
    with fsspec.open(batch.url, "rb", **(storage_options or {})) as file:
        try:
            table = parquet.ParquetFile(file)
            row = 0
            for chunk in table.iter_batches(batch_size=PARQUET_ROWS_PER_READ):
                for record in chunk.to_pylist():
                    row += 1
                    yield row, record
        except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
            raise RawDataError(f"batch {batch.name}: unreadable Parquet ({error})") from None


def _read_file_tree(batch: RawBatch, storage_options: dict[str, Any] | None) -> Generator[tuple[int, dict], None, None]:
    fs, root = fsspec.core.url_to_fs(batch.url, **(storage_options or {}))
    raw_root = posixpath.dirname(root.rstrip("/"))  # batches are directly under the raw root
    for number, path in enumerate(sorted(fs.find(root)), start=1):
        relative = posixpath.relpath(path, root)
        label = posixpath.basename(posixpath.dirname(path)) if posixpath.dirname(relative) else ""
        if isinstance(fs, LocalFileSystem):
            _refuse_unsafe_local_file(batch, relative, path, raw_root)
        try:
            content = fs.cat_file(path)
        except OSError as error:
            raise RawDataError(f"batch {batch.name}, file {relative}: unreadable ({error})") from None
        yield number, {"path": relative, "label": label, "content": content}


def _refuse_unsafe_local_file(batch: RawBatch, relative: str, path: str, raw_root: str) -> None:
    """Before a local file is read: refuse a link that leaves the raw root (its content would be
    published), a broken link, a link to a directory (not followed) and anything but a regular file
    (a FIFO would block the read forever)."""
    target = os.path.realpath(path)
    where = f"batch {batch.name}, file {relative}"
    link = f"a symbolic link to {target}" if os.path.islink(path) else None
    if not _is_inside(target, os.path.realpath(raw_root)):
        raise RawDataError(
            f"{where}: {link or 'a path through a symbolic link to ' + target}, outside the raw "
            f"root {raw_root}; links are followed only when they stay inside it"
        )
    if not os.path.exists(target):
        raise RawDataError(f"{where}: {link}, which does not exist")
    if os.path.isdir(target):
        raise RawDataError(f"{where}: {link or 'a directory'}, a directory; links to directories are not followed")
    if not os.path.isfile(target):
        raise RawDataError(f"{where}: not a regular file")


def _fingerprint(entries: list[dict]) -> str:
    parts = sorted(
        f"{entry['name']}|{entry.get('size')}|{entry.get('ETag') or entry.get('etag') or ''}|"
        f"{entry.get('mtime') or entry.get('LastModified') or entry.get('created') or ''}"
        for entry in entries
    )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _refuse_key_collisions(batches: list[RawBatch]) -> None:
    seen: dict[str, str] = {}
    for batch in batches:
        if batch.partition_key in seen:
            raise RawDataError(
                f"batches {seen[batch.partition_key]} and {batch.name} map to the same "
                f"partition key {batch.partition_key!r}; rename one"
            )
        seen[batch.partition_key] = batch.name
