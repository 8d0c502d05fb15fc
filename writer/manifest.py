"""The integrity manifest written beside the index: per-shard sizes and checksums, writer settings.

It is named `mds_manifest.json`, not `index.json`, because newer MDS readers (mosaicml-streaming)
take `index.json` for their own index format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from .column_encodings import checked_encodings
from .compression import crc32

MANIFEST_NAME = "mds_manifest.json"
CHECKSUM_ALGORITHM = "crc32"


def checksum(data: bytes | bytearray | memoryview) -> str:
    """A shard's CRC-32 as the manifest records it: `compression.crc32` (zlib-ng's: zlib's values,
    several times faster, and it releases the GIL, so the writer's threads checksum in parallel)."""
    return f"{crc32(data):08x}"


def writer_version() -> str:
    try:
        return metadata.version("mds-assets")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True)
class ShardRecord:
    """One shard as stored: `bytes` uncompressed (what the index counts), `stored_bytes` on disk."""

    file: str
    samples: int
    bytes: int
    stored_bytes: int
    checksum: str

    def as_json(self) -> dict[str, Any]:
        """`dataclasses.asdict` of it, written out: a merged manifest holds tens of thousands of
        shards, and `asdict`'s recursive deep copy costs many times this."""
        return {
            "file": self.file,
            "samples": self.samples,
            "bytes": self.bytes,
            "stored_bytes": self.stored_bytes,
            "checksum": self.checksum,
        }


@dataclass(frozen=True)
class Manifest:
    fields: tuple[str, ...]
    shard_size_limit: int | None
    compression: str | None
    shards: tuple[ShardRecord, ...]
    checksum_algorithm: str = CHECKSUM_ALGORITHM
    writer: str = "mds-assets"
    writer_version: str = ""
    column_encodings: Mapping[str, str] = field(default_factory=dict)  # field -> MDS v2 encoding, when known

    @property
    def total_samples(self) -> int:
        return sum(shard.samples for shard in self.shards)

    @property
    def total_bytes(self) -> int:
        return sum(shard.bytes for shard in self.shards)

    def to_json(self) -> bytes:
        document: dict[str, Any] = {
            "format": "mds",
            "format_version": 1,
            "writer": {"name": self.writer, "version": self.writer_version or writer_version()},
            "settings": {
                "fields": list(self.fields),
                "shard_size_limit": self.shard_size_limit,
                "compression": self.compression,
                **({"column_encodings": dict(self.column_encodings)} if self.column_encodings else {}),
            },
            "total_samples": self.total_samples,
            "total_bytes": self.total_bytes,
            "checksum_algorithm": self.checksum_algorithm,
            "shards": [shard.as_json() for shard in self.shards],
        }
        return json.dumps(document, indent=1).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Manifest:
        try:
            document = json.loads(data)
            settings = document["settings"]
            return cls(
                fields=tuple(settings["fields"]),
                shard_size_limit=settings["shard_size_limit"],
                compression=settings["compression"],
                shards=tuple(ShardRecord(**shard) for shard in document["shards"]),
                checksum_algorithm=document["checksum_algorithm"],
                writer=document["writer"]["name"],
                writer_version=document["writer"]["version"],
                column_encodings=checked_encodings(settings.get("column_encodings"), tuple(settings["fields"])),
            )
        except RecursionError:
            raise ValueError(f"{where}: not a valid manifest (nested too deeply)") from None
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{where}: not a valid manifest ({error})") from None


def merge(manifests: Sequence[Manifest], files: Sequence[str]) -> Manifest:
    """One manifest for shards taken in order from several datasets and renamed to `files`."""
    shards = [shard for manifest in manifests for shard in manifest.shards]
    renamed = tuple(
        ShardRecord(name, shard.samples, shard.bytes, shard.stored_bytes, shard.checksum)
        for shard, name in zip(shards, files, strict=True)
    )
    first = manifests[0]
    encodings = next((m.column_encodings for m in manifests if m.column_encodings), {})  # the merge checked they agree
    return Manifest(first.fields, first.shard_size_limit, first.compression, renamed, column_encodings=encodings)
