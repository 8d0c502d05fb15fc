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
from pydantic import ConfigDict, Field, field_validator

from writer.secrets import remember_password
from writer.writer import DEFAULT_SHARD_SIZE_LIMIT

from . import settings
from .core.credentials import refuse_credentials
from .core.grouping import SHARDS_PER_PARTITION, RawGroup, default_partition_bytes, group_batches
from .core.output_format import DEFAULT_FORMAT, Format, canonical_compression
from .core.raw_sources import list_batches
from .core.selection import ENCODINGS, FieldSelection, parse_fields

DEFAULT_FIELDS = settings.FIELDS.default.split(",")


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
        default_factory=dict,
        description="fsspec options; credentials are refused here (they would be stored in run config): "
        "set AWS_*, GOOGLE_APPLICATION_CREDENTIALS or AZURE_STORAGE_* in the environment instead",
    )
    adopt_output: bool = Field(
        default=False,
        description="take over an out_url holding an .mds dataset of another writer (replacing it); "
        "an output holding anything else mds-assets did not write is always refused",
    )

    @field_validator("raw_url", "out_url")
    @classmethod
    def _redacted(cls, url: str) -> str:
        """A URL's password never enters the settings (run config): it is shown as `***` and
        remembered outside them, for the files to be opened (writer.secrets)."""
        return remember_password(url)

    @field_validator("storage_options")
    @classmethod
    def _without_credentials(cls, options: dict[str, Any]) -> dict[str, Any]:
        refuse_credentials(options)
        return options

    partition_bytes: int | None = Field(
        default=None,
        description="raw bytes per partition: neighbouring small files form one partition of up to this "
        f"size, a larger file is one of its own (default {SHARDS_PER_PARTITION} x shard_size_limit)",
    )

    def selections(self) -> list[FieldSelection]:
        return parse_fields(self.fields)

    def fsspec_options(self) -> dict[str, Any] | None:
        return dict(self.storage_options) or None

    def canonical_compression(self) -> str | None:
        """The compression in its one spelling for this format; a clear error when the format does not have it."""
        return canonical_compression(self.format, self.compression)

    def partition_size(self) -> int:
        """The partition_bytes setting, or its default."""
        return self.partition_bytes or default_partition_bytes(self.shard_size_limit)

    def raw_groups(self, no_batch: list[str] | None = None) -> list[RawGroup]:
        """The raw URL listed once, its files grouped into partitions (`no_batch`: see `list_batches`)."""
        return group_batches(list_batches(self.raw_url, self.fsspec_options(), no_batch), self.partition_size())

    def check(self) -> None:
        """Fail fast on settings that can never work, before any batch is read."""
        self.selections()
        self.canonical_compression()
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
    """One spelling per location, so every run process, and the instance's record of its dataset
    (instance_binding), agree on it: local paths (with or without `file://`) absolute, from the
    working directory; other URLs without a trailing `/`."""
    local = url.removeprefix("file://")
    if "://" not in local:
        return str(Path(local).resolve())
    protocol, _, path = local.partition("://")
    return f"{protocol}://{path.rstrip('/')}" if path.strip("/") else local


def settings_from_environment() -> MDSSettings:
    """The code location's defaults: the embedded demo paths unless MDS_* variables say otherwise.
    Every MDS_* variable is checked here, when the code location loads: a bad one is a
    SettingError naming each bad variable and what it allows."""
    settings.check_environment()
    configured = MDSSettings(
        raw_url=absolute_url(settings.RAW_URL.read()),
        out_url=absolute_url(settings.OUT_URL.read()),
        fields=settings.FIELDS.read(),
        shard_size_limit=settings.SHARD_SIZE_LIMIT.read(),
        compression=settings.COMPRESSION.read(),
        format=settings.FORMAT.read(),
        partition_bytes=settings.PARTITION_BYTES.read(),
    )
    try:
        configured.canonical_compression()
    except ValueError as error:  # a compression the format cannot write
        raise settings.SettingError(
            "bad MDS_* settings (see docs/settings.md):\n"
            f"  {settings.COMPRESSION.name}, {settings.FORMAT.name}: {error}"
        ) from None
    try:
        configured.check()
    except ValueError as error:  # what no single variable shows: the output inside the raw data
        raise settings.SettingError(
            f"bad MDS_* settings (see docs/settings.md):\n  {settings.OUT_URL.name}, {settings.RAW_URL.name}: {error}"
        ) from None
    return configured
