"""Configuration as a Dagster resource: set in code, by environment, or from the launchpad.

Credentials are never fields here. s3fs/gcsfs read them from the standard environment
variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`, …) of the process
that runs the step, so they never enter run config, which Dagster stores in its database.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import ConfigDict, Field

from writer.compression import parse_compression
from writer.writer import DEFAULT_SHARD_SIZE_LIMIT

from .core.grouping import SHARDS_PER_PARTITION, RawGroup, default_partition_bytes, group_batches, parse_bytes
from .core.raw_sources import list_batches
from .core.selection import FieldSelection, parse_fields

DEFAULT_RAW_URL = "data/raw"
DEFAULT_OUT_URL = "data/mds"
DEFAULT_FIELDS = ["uid", "caption", "image:base64", "width:int64", "height:int64"]


class MDSSettings(ConfigurableResource):
    """Where raw batches are read, where the `.mds` dataset is published, and how it is written."""

    # A rejected value is never echoed in an error: storage_options may hold a secret after all.
    model_config = ConfigDict(hide_input_in_errors=True)

    raw_url: str = Field(description="fsspec URL whose *.jsonl[.gz] files / top-level directories are batches")
    out_url: str = Field(description="fsspec URL of the published dataset; partitions go under its partitions/ folder")
    fields: list[str] = Field(
        description="selected fields as name[:encoding], encodings: utf8 (default), base64, "
        "hex, json, int64, float64, bytes"
    )
    shard_size_limit: int = Field(default=DEFAULT_SHARD_SIZE_LIMIT, description="maximum uncompressed bytes per shard")
    compression: str | None = Field(default=None, description="None, 'gz' or 'gz:0'..'gz:9'")
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec options (no credentials: use AWS_* variables)"
    )
    partition_bytes: int | None = Field(
        default=None,
        description="raw bytes per partition: neighbouring small files form one partition of up to this "
        f"size, a larger file is one of its own (default {SHARDS_PER_PARTITION} x shard_size_limit)",
    )

    def selections(self) -> list[FieldSelection]:
        return parse_fields(self.fields)

    def fsspec_options(self) -> dict[str, Any] | None:
        return dict(self.storage_options) or None

    def partition_size(self) -> int:
        """The partition_bytes setting, or its default."""
        return self.partition_bytes or default_partition_bytes(self.shard_size_limit)

    def raw_groups(self) -> list[RawGroup]:
        """The raw URL listed once, its files grouped into partitions."""
        return group_batches(list_batches(self.raw_url, self.fsspec_options()), self.partition_size())

    def check(self) -> None:
        """Fail fast on settings that can never work, before any batch is read."""
        self.selections()
        parse_compression(self.compression)
        if self.shard_size_limit <= 0:
            raise ValueError(f"shard_size_limit must be positive, got {self.shard_size_limit}")
        if self.partition_bytes is not None and self.partition_bytes <= 0:
            raise ValueError(f"partition_bytes must be positive, got {self.partition_bytes}")
        if _is_inside(self.out_url, self.raw_url):
            raise ValueError(
                f"out_url {self.out_url} is inside the raw_url {self.raw_url}: the output would be "
                "read as raw batches; put it beside the raw data (e.g. data/raw and data/mds)"
            )

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # Runs launched from the UI (or by a sensor or schedule) get the same checks as `mds-assets build`.
        self.check()


def _location(url: str) -> tuple[str, str]:
    """(protocol, normalised path) of a local path or fsspec URL; local paths resolved through links."""
    protocol, separator, path = url.partition("://")
    if not separator:
        protocol, path = "file", url
    if protocol in ("file", "local"):
        return "file", os.path.realpath(path)
    return protocol, posixpath.normpath("/" + path)


def _is_inside(url: str, parent: str) -> bool:
    """Whether `url` is `parent` or anything under it (same protocol)."""
    (protocol, path), (parent_protocol, parent_path) = _location(url), _location(parent)
    return protocol == parent_protocol and (path == parent_path or path.startswith(parent_path.rstrip("/") + "/"))


def absolute_url(url: str) -> str:
    """Local paths made absolute (from the working directory), so every run process agrees on them."""
    return url if "://" in url else str(Path(url).resolve())


def settings_from_environment() -> MDSSettings:
    """The code location's defaults: the embedded demo paths unless MDS_* variables say otherwise."""
    return MDSSettings(
        raw_url=absolute_url(os.environ.get("MDS_RAW_URL", DEFAULT_RAW_URL)),
        out_url=absolute_url(os.environ.get("MDS_OUT_URL", DEFAULT_OUT_URL)),
        fields=os.environ.get("MDS_FIELDS", ",".join(DEFAULT_FIELDS)).split(","),
        shard_size_limit=int(os.environ.get("MDS_SHARD_SIZE_LIMIT", str(DEFAULT_SHARD_SIZE_LIMIT))),
        compression=os.environ.get("MDS_COMPRESSION") or None,
        partition_bytes=parse_bytes(os.environ["MDS_PARTITION_BYTES"])
        if os.environ.get("MDS_PARTITION_BYTES")
        else None,
    )
