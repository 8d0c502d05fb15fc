"""Every `MDS_*` environment variable of the code location: read here and nowhere else.

One table, `VARIABLES`: each variable's name, default, allowed values and meaning, with the
function that turns its text into a value or says why it cannot. The code location checks all
of them when it loads, so a bad value fails `dagster definitions validate` (and `dagster dev`,
and `mds-assets build`) with one message naming every bad variable and what it allows, instead
of a run or a sensor tick failing later. docs/settings.md's table is this table
(`python -m mds_assets.settings` prints it; a test keeps the two equal).

Adding a variable is one `Variable(...)` below: it registers itself in `VARIABLES`.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from writer.compression import ALLOWED as ALLOWED_COMPRESSION
from writer.compression import parse_compression
from writer.mdsv2_compression import parse_shard_compression
from writer.writer import DEFAULT_SHARD_SIZE_LIMIT

from .core.output_format import DEFAULT_FORMAT, FORMATS, Format
from .core.selection import ENCODINGS, parse_fields
from .core.sizes import ALLOWED as ALLOWED_SIZE
from .core.sizes import format_size, parse_size

T = TypeVar("T")
VARIABLES: dict[str, Variable[Any]] = {}
EXECUTORS = ("in_process", "multiprocess", "celery", "k8s")


class SettingError(ValueError):
    """A bad `MDS_*` value: the message names the variable and what it allows (never a secret's value)."""


@dataclass(frozen=True)
class Variable(Generic[T]):
    """One environment variable: `parse` turns its text (the default when unset or empty) into
    its value, raising ValueError on a bad one. A `secret` variable's value is never repeated."""

    name: str
    default: str
    allowed: str
    meaning: str
    parse: Callable[[str], T]
    secret: bool = False

    def __post_init__(self) -> None:
        VARIABLES[self.name] = self

    def text(self) -> str:
        """The variable's text as set, or its default when unset or empty."""
        return os.environ.get(self.name, "").strip() or self.default

    def read(self) -> T:
        """The value; a SettingError naming every bad variable of the environment when this one is bad
        (it may be the first read when the code location loads: the one message should name them all)."""
        try:
            return self.parse(self.text())
        except ValueError:
            raise SettingError(environment_problems_message()) from None

    def problem(self) -> str | None:
        """Why the variable's value is refused, or None."""
        text = self.text()
        try:
            self.parse(text)
        except ValueError as error:
            shown = f"{self.name} (value not shown: it may hold a secret)" if self.secret else f"{self.name}={text!r}"
            # the parser's first clause (what it expected, the table says); a secret's parser never repeats the value
            reason = str(error).split("; ")[0]
            return f"{shown}: {reason}" + ("" if self.allowed in reason else f"; allowed: {self.allowed}")
        return None


def environment_problems() -> list[str]:
    """What is wrong with each `MDS_*` variable set in this process's environment."""
    return [problem for variable in VARIABLES.values() if (problem := variable.problem()) is not None]


def environment_problems_message() -> str:
    problems = environment_problems()
    return "bad MDS_* settings (see docs/settings.md):\n  " + "\n  ".join(problems)


def check_environment() -> None:
    """Refuse the environment when any `MDS_*` value is bad, naming every one at once."""
    if environment_problems():
        raise SettingError(environment_problems_message())


def markdown_table() -> str:
    """The table of docs/settings.md."""
    lines = ["| variable | default | allowed | meaning |", "| --- | --- | --- | --- |"]
    for variable in VARIABLES.values():
        default = f"`{variable.default}`" if variable.default else "(unset)"
        cells = [f"`{variable.name}`", default, variable.allowed, variable.meaning]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


# Parsers: text in, value out, a ValueError saying what is wrong otherwise.


def _url(text: str) -> str:
    if not text:
        raise ValueError("empty")
    return text


def _fields(text: str) -> list[str]:
    parse_fields(text)  # a SelectionError (ValueError) names the field and encoding at fault
    return [item.strip() for item in text.split(",") if item.strip()]


def _compression(text: str) -> str | None:
    """A compression of either format (whether it fits MDS_FORMAT is checked with the format)."""
    try:
        parse_compression(text or None)
    except ValueError as error:
        try:
            parse_shard_compression(text or None)
        except (TypeError, ValueError):
            raise ValueError(str(error).split("; ")[0]) from None  # the table says what is allowed
    return text or None


def _optional_size(text: str) -> int | None:
    return parse_size(text) if text else None


def _format(text: str) -> Format:
    value = _one_of(*FORMATS)(text)
    return "streaming" if value == "streaming" else "composer"


def _one_of(*choices: str) -> Callable[[str], str]:
    def choice(text: str) -> str:
        value = text.lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value

    return choice


def _positive_integer(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError("not a whole number of 1 or more")
    return int(text)


def _whole_number(text: str) -> int:
    if not text.isdigit():
        raise ValueError("not a whole number of 0 or more")
    return int(text)


def _celery_url(text: str) -> str | None:
    """A Celery broker or backend URL (`scheme://…`), or nothing; the message never repeats it."""
    if text and "://" not in text:
        raise ValueError("not a URL (scheme://…)")
    return text or None


def _webhook_url(text: str) -> str | None:
    """An http(s) URL with a host, or nothing; the message never repeats it (it may hold a token)."""
    parts = urllib.parse.urlsplit(text)
    if text and (parts.scheme not in ("http", "https") or not parts.netloc):
        raise ValueError("not an http:// or https:// URL with a host")
    return text or None


# The table. Its order is the order of docs/settings.md.

RAW_URL = Variable(
    "MDS_RAW_URL",
    "data/raw",
    "a local path or fsspec URL (s3://, gs://, …); local paths are resolved from the working directory",
    "where the raw batches are: each `*.jsonl[.gz]`/`*.parquet` file and each top-level folder under it is one",
    _url,
)
OUT_URL = Variable(
    "MDS_OUT_URL",
    "data/mds",
    "a local path or fsspec URL, not inside `MDS_RAW_URL`",
    "where the dataset is published; each partition is written under its `partitions/` folder",
    _url,
)
FIELDS = Variable(
    "MDS_FIELDS",
    "uid,caption,image:base64,width:int64,height:int64",
    f"comma-separated `name[:encoding]`, each name once; encodings: {', '.join(ENCODINGS)} (default utf8)",
    "the fields selected from each raw record, and how each is stored",
    _fields,
)
SHARD_SIZE_LIMIT = Variable(
    "MDS_SHARD_SIZE_LIMIT",
    format_size(DEFAULT_SHARD_SIZE_LIMIT),
    ALLOWED_SIZE,
    "the most uncompressed bytes a shard holds (a single larger sample gets a shard of its own)",
    parse_size,
)
COMPRESSION = Variable(
    "MDS_COMPRESSION",
    "",
    ALLOWED_COMPRESSION.replace("None", "unset") + "; with MDS_FORMAT=streaming also zstd, zstd:N, br, bz2, snappy",
    "how shards are compressed (unset: not compressed)",
    _compression,
)
PARTITION_BYTES = Variable(
    "MDS_PARTITION_BYTES",
    "",
    ALLOWED_SIZE + "; unset: 4 × MDS_SHARD_SIZE_LIMIT",
    "raw bytes per partition: neighbouring small raw files form one partition of up to this size, a larger "
    "file is a partition of its own (see docs/partitions.md)",
    _optional_size,
)
VERIFY_BYTES_PER_CHECK = Variable(
    "MDS_VERIFY_BYTES_PER_CHECK",
    "1GiB",
    ALLOWED_SIZE + "; 0: only the shards written or changed since they were last verified",
    "how many bytes of shards `index_consistency` reads back beyond those new or changed since they were "
    "last verified, longest unverified first, each read weighing 1 MiB more than its shard (see docs/maintenance.md)",
    lambda text: parse_size(text) if text.strip() not in ("0", "") else 0,
)
FORMAT = Variable(
    "MDS_FORMAT",
    DEFAULT_FORMAT,
    ", ".join(FORMATS),
    "the dataset's format: `composer` (MDS v1, `index.mds`) or `streaming` (mosaicml-streaming's MDS v2, "
    "`index.json`, published by reference); see docs/formats.md",
    _format,
)
EXECUTOR = Variable(
    "MDS_EXECUTOR",
    "in_process",
    ", ".join(EXECUTORS),
    "which engine runs a run's steps: all in the run's process, a process per step, Celery workers, Kubernetes Jobs",
    _one_of(*EXECUTORS),
)
CELERY_BROKER = Variable(
    "MDS_CELERY_BROKER",
    "",
    "a Celery broker URL such as `redis://host:6379/0`; needed by `MDS_EXECUTOR=celery`",
    "the Celery broker; read through Dagster's `EnvVar`, never stored in run config",
    _celery_url,
    secret=True,
)
CELERY_BACKEND = Variable(
    "MDS_CELERY_BACKEND",
    "",
    "a Celery result backend URL; unset: the broker",
    "where Celery keeps task results; read through Dagster's `EnvVar`",
    _celery_url,
    secret=True,
)
CELERY_VISIBILITY_TIMEOUT = Variable(
    "MDS_CELERY_VISIBILITY_TIMEOUT",
    "600",
    "seconds, 1 or more; more than the longest step",
    "how long after delivery an unacknowledged Celery task (its worker lost) is handed to another worker",
    _positive_integer,
)
SENSOR_INTERVAL_SECONDS = Variable(
    "MDS_SENSOR_INTERVAL_SECONDS",
    "30",
    "seconds, 1 or more",
    "how often the sensors (new raw batches, failed checks, runs of ended builds) are evaluated at most",
    _positive_integer,
)
SENSOR_PARTITIONS_PER_RUN = Variable(
    "MDS_SENSOR_PARTITIONS_PER_RUN",
    "8",
    "a whole number, 1 or more",
    "the most partitions one run requested by the raw-batch sensor builds",
    _positive_integer,
)
INSTANCE_RETURN_SECONDS = Variable(
    "MDS_INSTANCE_RETURN_SECONDS",
    "60",
    "seconds, 0 or more; 0: do not wait",
    "how long `mds-assets build`, once the Dagster instance's database failed, waits for it to answer again "
    "to mark failed the runs the build left unfinished (see docs/failures.md)",
    _whole_number,
)
ALERT_WEBHOOK_URL = Variable(
    "MDS_ALERT_WEBHOOK_URL",
    "",
    "an `http://` or `https://` URL (a Slack incoming webhook, say); never printed",
    "where the alert of a failed check or a failed run is POSTed as JSON (besides the sensors' log)",
    _webhook_url,
    secret=True,
)


if __name__ == "__main__":
    print(markdown_table(), end="")
