"""MDS v2 `index.json` files over shard files of given sizes, written without a writer: fixtures
for publishing by reference, which reads only indexes and file sizes (the shard bytes here are
filler, not samples)."""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Sequence
from typing import Any

import fsspec


def shard_entry(basename: str, samples: int, size: int, columns: Sequence[str] = ("a",)) -> dict[str, Any]:
    """One shard of an index as mosaicml-streaming's MDSWriter records it (uncompressed, sha1)."""
    return {
        "column_encodings": ["bytes"] * len(columns),
        "column_names": list(columns),
        "column_sizes": [None] * len(columns),
        "compression": None,
        "format": "mds",
        "hashes": ["sha1"],
        "raw_data": {"basename": basename, "bytes": size, "hashes": {"sha1": hashlib.sha1(filler(size)).hexdigest()}},
        "samples": samples,
        "size_limit": 1 << 26,
        "version": 2,
        "zip_data": None,
    }


def filler(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + bytes(range(size % 256))


def write_v2_dataset(
    url: str, shard_samples: Sequence[int], shard_size: int = 300, columns: Sequence[str] = ("a",)
) -> list[dict[str, Any]]:
    """A folder with `shard.NNNNN.mds` files and their `index.json`; returns the index's shards."""
    fs, root = fsspec.core.url_to_fs(url)
    fs.makedirs(root, exist_ok=True)
    shards = []
    for number, samples in enumerate(shard_samples):
        name = f"shard.{number:05d}.mds"
        fs.pipe_file(posixpath.join(root, name), filler(shard_size + number))
        shards.append(shard_entry(name, samples, shard_size + number, columns))
    fs.pipe_file(
        posixpath.join(root, "index.json"), json.dumps({"shards": shards, "version": 2}, sort_keys=True).encode()
    )
    return shards


def read_json(url: str) -> Any:
    with fsspec.open(url, "rb") as file:
        return json.loads(file.read())
