"""Whose output folder this is: mds-assets writes only into an output that is empty, missing, or
one it published itself, so a mistyped `--out` never replaces or deletes somebody's data.

This project knows its own output by its own files: the sidecar `mds_partitions.json` that
every publish writes, or the `partitions/` folder that holds one dataset per partition (there
before the first publish, and after a publish that failed once the old index was removed).
Anything else is refused before any change, naming what is there. A folder holding an `.mds`
dataset written by another writer (Composer's `StreamingDatasetWriter`, say) can be taken over
explicitly (`adopt_output`, `mds-assets build --adopt-output`): its dataset is then replaced by
the one built from the raw batches, and any other file in it is left alone.
"""

from __future__ import annotations

from typing import Any

from writer.lock import LOCK_NAME
from writer.published import published_index_names
from writer.storage import Storage, is_temporary

from .layout import PARTITIONS_DIR, PARTITIONS_SIDECAR
from .output_format import Format, refuse_format_switch
from .wording import first_names

_LISTED = 8  # names listed in a refusal; the rest are counted


class ForeignOutputError(ValueError):
    """The output folder holds data mds-assets did not write; the message names what is there."""


def check_output_may_be_written(
    out_url: str,
    format: Format,
    storage_options: dict[str, Any] | None,
    adopt: bool = False,
    partition_key: str | None = None,
) -> None:
    """Before anything is written to the output: it is ours (or adopted), and holds no dataset
    of the other format (in its root, or in the partition about to be written). The root is
    listed once for both, by name: it holds every published shard."""
    names = Storage(out_url, storage_options).list_names()
    check_output_is_ours(out_url, storage_options, adopt=adopt, names=names)
    refuse_format_switch(out_url, format, storage_options, partition_key, root_names=names)


def check_output_is_ours(
    out_url: str, storage_options: dict[str, Any] | None, adopt: bool = False, names: list[str] | None = None
) -> None:
    """Raise ForeignOutputError unless `out_url` is missing, empty, published by this project,
    or (`adopt`) holds an `.mds` dataset to take over. Reads only: nothing is changed.

    `names`: the root's listing when the caller has it. An output holding this project's
    sidecar as a file is ours without a look at anything else in it (a published output holds
    tens of thousands of shards, which need not be stat-ed); only any other output is listed
    with the type of each entry."""
    storage = Storage(out_url, storage_options)
    listed = [name for name in (storage.list_names() if names is None else names) if not _is_bookkeeping(name)]
    if not listed or (PARTITIONS_SIDECAR in listed and storage.fs.isfile(storage.path(PARTITIONS_SIDECAR))):
        return
    entries = {name: kind for name, (kind, _size) in storage.entries().items() if not _is_bookkeeping(name)}
    if not entries or _is_ours(storage, entries):
        return
    has_index = any(name in entries for name in published_index_names())
    if adopt and has_index:
        return
    raise ForeignOutputError(_refusal(out_url, entries, has_index, adopt))


def _is_bookkeeping(name: str) -> bool:
    """A lock or a temporary left by a writer of this project: no data of anybody's."""
    return name.startswith(LOCK_NAME) or is_temporary(name)  # the lock, and any marker beside it


def _is_ours(storage: Storage, entries: dict[str, str]) -> bool:
    if entries.get(PARTITIONS_SIDECAR) == "file":
        return True
    if entries.get(PARTITIONS_DIR) != "directory":
        return False
    partitions = Storage(storage.url.rstrip("/") + "/" + PARTITIONS_DIR, storage.options)
    return all(kind == "directory" for kind, _size in partitions.entries().values())  # one folder per partition


def _refusal(out_url: str, entries: dict[str, str], has_index: bool, adopt: bool) -> str:
    names = [name + ("/" if kind == "directory" else "") for name, kind in sorted(entries.items())]
    listed = first_names(names, _LISTED)
    message = f"the output {out_url} holds files mds-assets did not write ({listed}); nothing was changed. "
    if has_index:
        return message + (
            "It holds an .mds dataset of another writer: choose an empty or new output, or take it over "
            "with `mds-assets build --adopt-output` (adopt_output: true for runs from the UI), which "
            "replaces that dataset with the one built from the raw batches"
        )
    reason = "it holds no .mds dataset to adopt: " if adopt else ""
    return message + f"{reason}choose an empty or new output, or move those files away"
