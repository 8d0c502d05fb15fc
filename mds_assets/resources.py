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

from writer.writer import DEFAULT_SHARD_SIZE_LIMIT

from .core.output_format import DEFAULT_FORMAT, FORMATS, Format, canonical_compression
from .core.selection import ENCODINGS, FieldSelection, parse_fields

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
        description=f"selected fields as name[:encoding], encodings: {', '.join(ENCODINGS)} (utf8 is the default)"
    )
    format: Format = Field(
        default=DEFAULT_FORMAT,
        description="'composer': MDS v1 (index.mds), read by Composer 0.10.1 and writer.MDSDataset; "
        "'streaming': mosaicml-streaming's MDS v2 (index.json), read by streaming.StreamingDataset, "
        "published by reference",
    )
    shard_size_limit: int = Field(default=DEFAULT_SHARD_SIZE_LIMIT, description="maximum uncompressed bytes per shard")
    compression: str | None = Field(
        default=None,
        description="None; composer: 'gz' or 'gz:0'..'gz:9'; streaming: also 'zstd', 'zstd:1'..'zstd:22', "
        "'br', 'bz2', 'snappy'",
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec options (no credentials: use AWS_* variables)"
    )

    def selections(self) -> list[FieldSelection]:
        return parse_fields(self.fields)

    def fsspec_options(self) -> dict[str, Any] | None:
        return dict(self.storage_options) or None

    def canonical_compression(self) -> str | None:
        """The compression in its one spelling for this format; a clear error when the format does not have it."""
        return canonical_compression(self.format, self.compression)

    def check(self) -> None:
        """Fail fast on settings that can never work, before any batch is read."""
        self.selections()
        self.canonical_compression()
        if self.shard_size_limit <= 0:
            raise ValueError(f"shard_size_limit must be positive, got {self.shard_size_limit}")
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
        format=format_from_environment(),
    )


def format_from_environment() -> Format:
    """MDS_FORMAT, checked here so that a typo names the variable rather than a pydantic field."""
    value = os.environ.get("MDS_FORMAT") or DEFAULT_FORMAT
    for known in FORMATS:
        if value == known:
            return known
    raise ValueError(f"MDS_FORMAT={value!r}: expected one of {', '.join(FORMATS)}")
