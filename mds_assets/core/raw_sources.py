"""Raw batches at any fsspec URL: which there are, what they look like now, and their records.

Three layouts: JSONL batches (each `*.jsonl` / `*.jsonl.gz` file directly under the raw URL,
one JSON object a line), Parquet batches (each `*.parquet` file, one row a record; needs the
`parquet` extra) and file-tree batches (each top-level directory, laid out as torchvision's
`ImageFolder`: every image file in it is a sample `{path, label, content}`, see `is_sample`).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import posixpath
import re
import stat
import unicodedata
import zlib
from collections.abc import Callable, Collection, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import IO, Any, cast

import fsspec
import orjson
from fsspec.implementations.local import LocalFileSystem

from writer.exact_json import a_double_may_change, holds_a_float, loads_exact, outside_long_strings
from writer.failures import failure_sentence, is_unreachable
from writer.secrets import with_password

from .wording import first_names, plural

JSONL_SUFFIXES = (".jsonl.gz", ".jsonl")
PARQUET_SUFFIX = ".parquet"
BATCH_FILE_SUFFIXES = JSONL_SUFFIXES + (PARQUET_SUFFIX,)  # what a batch file is; a directory is a file-tree batch
# Files of records (what dataframe libraries write: Spark's `part-*.json`, CSV): a folder of them
# and no image is no ImageFolder, refused rather than read as a batch of no samples.
DATA_FILE_SUFFIXES = BATCH_FILE_SUFFIXES + (".json", ".json.gz", ".ndjson", ".csv", ".tsv")
WHAT_A_BATCH_IS = (
    "a batch is a *.jsonl (JSON Lines: one object a line), *.jsonl.gz or *.parquet file (names in lower case), "
    "or a folder of images, directly under the raw URL"
)
_UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")
# Read a local batch file this much at a time: a line longer than the default 8 KiB buffer (a
# record with a base64 image) is otherwise gathered from several reads and joined (~20 % of
# reading the line).
READ_BUFFER_BYTES = 1 << 20
PARQUET_ROWS_PER_READ = 4096  # rows decoded at a time: memory stays bounded whatever the file's size
# The files of a file-tree batch that are samples: torchvision's `IMG_EXTENSIONS` (any case).
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
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


def list_batches(
    raw_url: str, storage_options: dict[str, Any] | None = None, no_batch: list[str] | None = None
) -> list[RawBatch]:
    """Every batch under `raw_url`, sorted by partition key; hidden names (`.x`) are none.
    `no_batch` collects the names of the files of records that are no batch (`is_overlooked`)."""
    fs, root = fsspec.core.url_to_fs(with_password(raw_url), **(storage_options or {}))
    fs.invalidate_cache(root)  # a sensor lists again and again: always ask the store
    try:
        entries = fs.ls(root, detail=True)
    except FileNotFoundError:
        raise RawDataError(f"raw URL {raw_url} does not exist") from None
    except Exception as error:
        if not (is_unreachable(error) or isinstance(error, TypeError)):
            raise
        raise RawDataError(failure_sentence(error, raw_url)) from None  # the sensor skips, naming it
    _refuse_a_file_as_root(raw_url, root, entries)
    batches = []
    linked = {os.path.realpath(entry["name"]) for entry in entries if entry.get("islink")}  # local disks only
    is_alias = _aliases(root, entries)
    for entry in entries:
        name = posixpath.basename(entry["name"].rstrip("/"))
        if is_hidden(name):  # as inside a file-tree batch: tools' own files (._x.jsonl, .Trash-1000/)
            continue
        url = posixpath.join(raw_url.rstrip("/"), name)
        if entry.get("islink"):  # local filesystems only: object stores have no links
            if is_alias(entry):
                continue
            entry = _follow_top_level_link(root, entry, name)
            if entry is None:
                continue
            if entry["type"] == "refused":
                batches.append(RawBatch(name, url, "refused", _fingerprint([entry]), 0, entry["problem"]))
                continue
        if entry["type"] not in ("file", "directory"):  # a FIFO or a device: never opened
            if name.endswith(BATCH_FILE_SUFFIXES):
                problem = _special_file_problem(name, entry["name"])
                batches.append(RawBatch(name, url, "refused", _fingerprint([entry]), 0, problem))
            continue
        if entry["type"] == "directory":
            try:
                batches.append(_file_tree_batch(fs, entry["name"], name, url, linked))
            except OSError as error:  # reading it fails naming the folder, as it would now
                problem = _unlisted_folder_problem(name, error)
                batches.append(RawBatch(name, url, "refused", _fingerprint([entry]), 0, problem))
        elif name.endswith(JSONL_SUFFIXES):
            batches.append(RawBatch(name, url, "jsonl", _fingerprint([entry]), entry.get("size") or 0))
        elif name.endswith(PARQUET_SUFFIX):
            batches.append(RawBatch(name, url, "parquet", _fingerprint([entry]), entry.get("size") or 0))
        elif no_batch is not None and is_overlooked(name):
            no_batch.append(name)
    batches.sort(key=lambda batch: batch.partition_key)
    _refuse_key_collisions(batches)
    _refuse_unicode_twins(batches)
    return batches


def _refuse_a_file_as_root(raw_url: str, root: str, entries: list[dict]) -> None:
    """fsspec lists a file as itself: a raw URL naming one batch file would be read as a folder
    holding a batch of the same name, which does not exist."""
    if len(entries) == 1 and entries[0]["type"] == "file" and entries[0]["name"].rstrip("/") == root.rstrip("/"):
        folder = posixpath.dirname(raw_url.rstrip("/"))
        raise RawDataError(
            f"raw URL {raw_url} is a file, not a folder: give the folder that holds the batches ({folder})"
        )


def _file_tree_batch(
    fs: fsspec.AbstractFileSystem, path: str, name: str, url: str, linked: Collection[str] = ()
) -> RawBatch:
    """A top-level folder: an ImageFolder batch; refused, naming them, when it holds no image but
    batch files (JSONL or Parquet one level too deep would otherwise publish no sample, silently),
    except those a top-level link points to (`linked`, resolved): each is a batch through its link."""
    found = _find(fs, path)
    files = {file: info for file, info in found.items() if is_sample(posixpath.relpath(file, path))}
    fingerprint = _fingerprint(list(files.values()))
    if not files:
        relative = (posixpath.relpath(file, path) for file in found)
        misplaced = sorted(
            file
            for file in relative
            if is_data_file(file)
            and not is_hidden(file)
            and not (linked and os.path.realpath(posixpath.join(path, file)) in linked)
        )
        if misplaced:
            listed = first_names(misplaced)
            kind = "batch file" if all(file.endswith(BATCH_FILE_SUFFIXES) for file in misplaced) else "data file"
            problem = (
                f"batch {name}: a folder with no images but {plural(len(misplaced), kind)} ({listed}); batch files "
                f"(*.jsonl, *.jsonl.gz, *.parquet) are read only directly under the raw URL: move them up, or point "
                f"the raw URL at {url}"
            )
            return RawBatch(name, url, "refused", _fingerprint(list(found.values())), 0, problem)
    return RawBatch(name, url, "filetree", fingerprint, sum(file.get("size") or 0 for file in files.values()))


def _aliases(root: str, entries: list[dict]) -> Callable[[dict], bool]:
    """Whether a top-level link is one more name for a file or folder that is a batch already
    (`latest.jsonl -> 2024-01-02.jsonl`, or a second link to what an earlier one, by name, points
    to): its records would be published twice. Links to other places stay batches of their own."""
    links = sorted(
        (name, entry["name"])
        for entry in entries
        if entry.get("islink") and not is_hidden(name := posixpath.basename(entry["name"].rstrip("/")))
    )
    if not links:  # one pass over the listing, which may hold 100,000 files
        return lambda entry: False
    real_root = os.path.realpath(root)
    names = ((posixpath.basename(entry["name"].rstrip("/")), entry) for entry in entries)
    held = {posixpath.join(real_root, name) for name, entry in names if _is_batch_entry(name, entry)}
    aliases = set()
    for _, path in links:
        target = os.path.realpath(path)
        if target in held:
            aliases.add(path)
        held.add(target)
    return lambda entry: entry["name"] in aliases


def _is_batch_entry(name: str, entry: dict) -> bool:
    """A top-level entry, not a link, that is a batch by its kind and name."""
    if entry.get("islink") or is_hidden(name):
        return False
    return entry["type"] == "directory" or (entry["type"] == "file" and name.endswith(BATCH_FILE_SUFFIXES))


def is_overlooked(name: str) -> bool:
    """Whether a file directly under the raw URL holds records by its name but is no batch: JSON
    Lines named `*.json` (as `datasets`' `to_json` and Spark write it), CSV. Said, never read."""
    return is_data_file(name) and not name.endswith(BATCH_FILE_SUFFIXES)


def is_data_file(name: str) -> bool:
    """Whether a file holds records by its name (a batch file's suffix, or `*.json`, CSV; any case)."""
    return name.lower().endswith(DATA_FILE_SUFFIXES)


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
    kind = "directory" if stat.S_ISDIR(status.st_mode) else "file" if stat.S_ISREG(status.st_mode) else "other"
    return {"name": entry["name"], "type": kind, "size": status.st_size, "mtime": status.st_mtime}


def _is_inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def read_records(
    batch: RawBatch, storage_options: dict[str, Any] | None = None
) -> Generator[tuple[int, dict], None, None]:
    """(line number from 1, record) for each sample of the batch, streamed (for Parquet, the row
    number); `close()` closes the file however much of it was read.

    The listing is trusted no further than a fresh look at this one batch (it may be a sensor's,
    handed to a later run, or typed into a run's config), and a local file is checked where it is
    opened: a link that leaves the raw root by then is refused, naming it."""
    return _read_as_it_is_now(batch, storage_options)


def _read_as_it_is_now(
    batch: RawBatch, storage_options: dict[str, Any] | None
) -> Generator[tuple[int, dict], None, None]:
    if batch.layout == "refused":
        raise RawDataError(batch.problem)
    if batch.layout in ("jsonl", "parquet"):
        _refuse_unless_regular(batch)  # a FIFO or a device now: refused as such, never opened
    _check_layout_now(batch, storage_options)
    readers = {"jsonl": _read_jsonl, "parquet": _read_parquet, "filetree": _read_file_tree}
    yield from readers[batch.layout](batch, storage_options)


def _check_layout_now(batch: RawBatch, storage_options: dict[str, Any] | None) -> None:
    """Refuse the batch unless a fresh look at its one entry finds what the listing says: a batch
    of that layout directly under the raw root (a top-level link followed only inside the root)."""
    fs, path = fsspec.core.url_to_fs(with_password(batch.url), **(storage_options or {}))
    path = path.rstrip("/")
    if isinstance(fs, LocalFileSystem) and os.path.islink(path):
        entry = _follow_top_level_link(posixpath.dirname(path), {"name": path}, batch.name)
        if entry is not None and entry["type"] == "refused":
            raise RawDataError(entry["problem"])
        kind = entry["type"] if entry is not None else "other"
    else:
        try:
            kind = fs.info(path)["type"]
        except FileNotFoundError:
            raise RawDataError(f"batch {batch.name}: {batch.url} is gone since it was listed") from None
    now = _layout_of(batch.name, kind)
    if now != batch.layout:
        raise RawDataError(
            f"batch {batch.name}: listed as {batch.layout}, but {batch.url} is "
            f"{'a ' + now + ' batch' if now else 'no batch'} now; list the raw URL again"
        )


def _layout_of(name: str, kind: str) -> str | None:
    if kind == "directory":
        return "filetree"
    if kind == "file" and name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if kind == "file" and name.endswith(PARQUET_SUFFIX):
        return "parquet"
    return None


@contextmanager
def _open_batch_file(batch: RawBatch, storage_options: dict[str, Any] | None, gzipped: bool) -> Iterator[IO[bytes]]:
    """The batch's file, opened; a local one is refused when the file actually opened (links
    followed at the open, not at the listing) lies outside the raw root."""
    fs, path = fsspec.core.url_to_fs(with_password(batch.url), **(storage_options or {}))
    if not isinstance(fs, LocalFileSystem):
        url = with_password(batch.url)
        with fsspec.open(url, "rb", compression="gzip" if gzipped else None, **(storage_options or {})) as file:
            yield file
        return
    with open(path, "rb", buffering=READ_BUFFER_BYTES) as file:
        _refuse_opened_outside(f"batch {batch.name}", file.fileno(), path, posixpath.dirname(path))
        if gzipped:
            with gzip.GzipFile(fileobj=file) as unzipped:
                yield cast(IO[bytes], unzipped)  # a GzipFile is a binary file
        else:
            yield file


def _refuse_opened_outside(where: str, descriptor: int, path: str, raw_root: str) -> None:
    """Where the open file really is (Linux: /proc/self/fd, which no later swap of a link changes)
    must be inside the raw root."""
    try:
        opened = os.readlink(f"/proc/self/fd/{descriptor}")
    except OSError:  # no /proc: the path as resolved now (the same file unless swapped this instant)
        opened = os.path.realpath(path)
    if not _is_inside(opened, os.path.realpath(raw_root)):
        raise RawDataError(
            f"{where}: a symbolic link to {opened}, outside the raw root {raw_root}; links are followed only "
            "when they stay inside the raw root"
        )


_SPECIAL_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _special_file_problem(name: str, local_path: str) -> str:
    """Why a batch that is no regular file is refused: a FIFO blocks its reader forever, a device
    like /dev/zero is read without end."""
    try:
        kind = _SPECIAL_KINDS.get(stat.S_IFMT(os.stat(local_path).st_mode), "a special file")
    except OSError:
        kind = "a special file"
    return f"batch {name}: not a regular file ({kind}), not opened"


def _refuse_unless_regular(batch: RawBatch) -> None:
    """Just before a batch file is opened, on a local disk: it may have been replaced since the
    listing, and opening a FIFO blocks forever."""
    protocol, separator, path = batch.url.partition("://")
    if separator and protocol not in ("file", "local"):
        return  # object stores and remote filesystems have no special files
    local_path = path if separator else batch.url
    try:
        mode = os.stat(local_path).st_mode
    except OSError:
        return  # opening it reports it, named
    if not stat.S_ISREG(mode):
        raise RawDataError(_special_file_problem(batch.name, local_path))


def _read_jsonl(batch: RawBatch, storage_options: dict[str, Any] | None) -> Generator[tuple[int, dict], None, None]:
    with _open_batch_file(batch, storage_options, gzipped=batch.name.endswith(".gz")) as lines:
        line_number = 0
        try:
            for line_number, line in enumerate(lines, start=1):
                if not line.isspace():  # a blank line is skipped (`strip` would copy every line)
                    yield line_number, _parse_line(batch, line_number, line)
        except (EOFError, OSError, zlib.error) as error:  # zlib.error: a damaged deflate block in a .gz
            raise RawDataError(f"batch {batch.name}, line {line_number + 1}: unreadable ({error})") from None


def _parse_line(batch: RawBatch, line_number: int, line: bytes) -> dict:
    # orjson: about twice as fast as the standard library on typical lines, and strict UTF-8; a line
    # that may hold a number orjson would change (exact_json) is parsed exactly instead
    try:
        record = orjson.loads(line)
    except (ValueError, RecursionError) as error:  # orjson.JSONDecodeError is a ValueError
        raise _not_json(batch, line_number, error, line) from None
    if not isinstance(record, dict):
        raise RawDataError(f"batch {batch.name}, line {line_number}: a JSON {type(record).__name__}, not an object")
    text = outside_long_strings(line, record)  # the line but its long strings: where numbers and brackets are
    if holds_a_float(record) and a_double_may_change(text):
        try:
            record = loads_exact(line)
        except (ValueError, RecursionError) as error:
            raise _not_json(batch, line_number, error, line) from None
    if sum(piece.count(b"[") + piece.count(b"{") for piece in text) > MAX_NESTING:  # a cheap (C) bound on the depth
        for name, value in record.items():
            if _nesting(value) > MAX_NESTING:
                raise RawDataError(
                    f"batch {batch.name}, line {line_number}, field {name!r}: nested deeper than {MAX_NESTING} levels"
                )
    return record


def _not_json(batch: RawBatch, line_number: int, error: Exception, line: bytes) -> RawDataError:
    # only the last line of a file can end without a newline: one cut short is a file being uploaded
    cut = "" if line.endswith(b"\n") else "; its last line ends with no newline: is the file still being written?"
    return RawDataError(f"batch {batch.name}, line {line_number}: not valid JSON ({_json_reason(error)}){cut}")


# The parsers' position in the text they were given (one line): "…: line 1 column 8 (char 7)"
_PARSER_POSITION = re.compile(r":? line (\d+) column (\d+) \(char \d+\)$")


def _json_reason(error: Exception) -> str:
    """The parser's reason with its column in the line, not a second line number (the parser
    counts the line's own newline as the start of a line 2: that is the line's end)."""
    reason = str(error)
    position = _PARSER_POSITION.search(reason)
    if position is None:
        return reason
    where = f"at column {position[2]}" if position[1] == "1" else "at the line's end"
    return f"{reason[: position.start()]} {where}"


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
    with _open_batch_file(batch, storage_options, gzipped=False) as file:
        try:
            table = parquet.ParquetFile(file)
            _refuse_repeated_columns(batch, table.schema_arrow.names)
            row = 0
            for chunk in table.iter_batches(batch_size=PARQUET_ROWS_PER_READ):
                for record in chunk.to_pylist():
                    row += 1
                    yield row, record
        except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
            raise RawDataError(f"batch {batch.name}: unreadable Parquet ({error})") from None


def is_hidden(relative: str) -> bool:
    """Whether a path inside a file-tree batch is hidden or under a hidden folder (`.DS_Store`,
    `.ipynb_checkpoints/`, `.git/`): tools' own files, never read."""
    return any(part.startswith(".") for part in relative.split("/"))


def is_sample(relative: str) -> bool:
    """Whether a file of a file-tree batch (its path relative to the batch) is a sample: an image
    by torchvision's extensions, not hidden. A README or notes beside the pictures are not data."""
    return relative.lower().endswith(IMG_EXTENSIONS) and not is_hidden(relative)


def sample_label(relative: str) -> str:
    """The class of a sample, as torchvision's `ImageFolder` gives it: the top-level folder it is
    in, however deep (`cats/tabby/1.png` is a cat); "" for an image directly in the batch."""
    folder, separator, _ = relative.partition("/")
    return folder if separator else ""


def _refuse_repeated_columns(batch: RawBatch, names: list[str]) -> None:
    """Two columns of one name would become one field of a record, the other silently lost."""
    first: dict[str, int] = {}
    for number, name in enumerate(names, start=1):
        if name in first:
            raise RawDataError(
                f"batch {batch.name}: columns {first[name]} and {number} are both named {name!r}; "
                "a record keeps one value per field, so rename one"
            )
        first[name] = number


def _read_file_tree(batch: RawBatch, storage_options: dict[str, Any] | None) -> Generator[tuple[int, dict], None, None]:
    """Every sample of a file-tree batch. Every file that is not hidden is vetted on a local
    filesystem (a link leaving the raw root refuses the batch, whatever its name); only samples are read."""
    fs, root = fsspec.core.url_to_fs(with_password(batch.url), **(storage_options or {}))
    raw_root = posixpath.dirname(root.rstrip("/"))  # batches are directly under the raw root
    number = 0
    try:
        paths = sorted(_find(fs, root))
    except OSError as error:
        raise RawDataError(_unlisted_folder_problem(batch.name, error)) from None
    for path in paths:
        relative = posixpath.relpath(path, root)
        if is_hidden(relative):
            continue
        if isinstance(fs, LocalFileSystem):
            _refuse_unsafe_local_file(batch, relative, path, raw_root)
        if not is_sample(relative):
            continue
        try:
            if isinstance(fs, LocalFileSystem):  # vetted above; checked again where it is opened
                content = _read_local_inside(f"batch {batch.name}, file {relative}", path, raw_root)
            else:
                content = fs.cat_file(path)
        except OSError as error:
            raise RawDataError(f"batch {batch.name}, file {relative}: unreadable ({error})") from None
        number += 1
        yield number, {"path": relative, "label": sample_label(relative), "content": content}


def _find(fs: fsspec.AbstractFileSystem, root: str) -> dict[str, dict[str, Any]]:
    """Every file under `root` with its listing details, as `fs.find(root, detail=True)`; on a
    local disk a folder that cannot be listed raises its OSError, where fsspec's `find` lists it as
    empty (its `on_error` reaches the top folder only). Links to folders are listed, not entered."""
    if not isinstance(fs, LocalFileSystem):
        found: dict[str, dict[str, Any]] = fs.find(root, detail=True)
        return found
    files: dict[str, dict[str, Any]] = {}
    folders = [root]
    while folders:
        for info in fs.ls(folders.pop(), detail=True):
            if info["type"] == "directory":
                folders.append(info["name"])
            else:
                files[info["name"]] = info
    return dict(sorted(files.items()))


def _unlisted_folder_problem(name: str, error: OSError) -> str:
    """A folder of a file-tree batch that cannot be listed (another user's, mode 700) would
    otherwise be listed as empty (fsspec's default), its samples silently left out."""
    return (
        f"batch {name}: a folder in it cannot be listed ({error.strerror or error}: {error.filename or name}); "
        "make it readable by the user running the build, or move it out of the raw URL"
    )


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


def _read_local_inside(where: str, path: str, raw_root: str) -> bytes:
    with open(path, "rb") as file:
        _refuse_opened_outside(where, file.fileno(), path, raw_root)
        return file.read()


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


def _refuse_unicode_twins(batches: list[RawBatch]) -> None:
    """Two names that are one name in two Unicode forms (`café` composed, and decomposed as a Mac
    may upload it) show the same to anyone, so they are most likely one file uploaded twice:
    publishing both would publish its records twice."""
    seen: dict[str, str] = {}
    for batch in batches:
        normal = unicodedata.normalize("NFC", batch.name)
        if normal in seen:
            raise RawDataError(
                f"batches {ascii(seen[normal])} and {ascii(batch.name)} are the same name in two Unicode forms "
                "(composed and decomposed): most likely one file uploaded twice; remove one, or rename it"
            )
        seen[normal] = batch.name
