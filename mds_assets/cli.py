"""`mds-assets build | demo`: build datasets through Dagster from the shell."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from writer.writer import DEFAULT_SHARD_SIZE_LIMIT

from .build import BuildReport, build
from .core.demo_data import write_demo_batches
from .core.grouping import SHARDS_PER_PARTITION, parse_bytes
from .core.layout import partition_url
from .core.selection import json_type
from .resources import DEFAULT_FIELDS, MDSSettings, absolute_url


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return args.command(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mds-assets", description="Build .mds datasets through Dagster.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    build_command = commands.add_parser("build", help="build what is missing or changed, then publish")
    build_command.add_argument("--raw", required=True, help="fsspec URL of the raw batches")
    build_command.add_argument("--out", required=True, help="fsspec URL of the published dataset")
    build_command.add_argument("--fields", required=True, help="name[:encoding],... e.g. uid,text,img:base64")
    _add_common(build_command)
    build_command.set_defaults(command=_build)
    demo = commands.add_parser("demo", help="generate a demo raw dataset under ./data/raw and build ./data/mds")
    demo.add_argument("--dir", default="data", help="where raw/ and mds/ go (default: data)")
    _add_common(demo)
    demo.set_defaults(command=_demo)
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shard-size-limit",
        type=int,
        default=DEFAULT_SHARD_SIZE_LIMIT,
        help=f"bytes per shard (default {DEFAULT_SHARD_SIZE_LIMIT >> 20} MiB)",
    )
    parser.add_argument("--compression", default=None, help="gz or gz:0..gz:9 (default: none)")
    parser.add_argument(
        "--partition-bytes",
        type=_bytes,
        default=None,
        help="raw bytes per partition, e.g. 64MB or 64MiB: small neighbouring files form one partition up "
        f"to this size (default {SHARDS_PER_PARTITION} x --shard-size-limit)",
    )
    parser.add_argument(
        "--storage-options",
        type=_json_object,
        default={},
        help="JSON fsspec options (credentials belong in AWS_* environment variables)",
    )
    parser.add_argument("--workers", type=int, default=2, help="partitions built at once (default 2)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _json_object(text: str) -> dict:
    """--storage-options: a JSON object. Errors never repeat the value: it may hold a secret."""
    try:
        value = json.loads(text)
    except ValueError as error:
        position = f" (line {error.lineno}, column {error.colno})" if isinstance(error, json.JSONDecodeError) else ""
        raise argparse.ArgumentTypeError(f"not valid JSON{position}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f'must be a JSON object such as {{"anon": true}}, not a JSON {json_type(value)}'
        )
    return value


def _bytes(text: str) -> int:
    try:
        return parse_bytes(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _build(args: argparse.Namespace) -> int:
    try:
        settings = MDSSettings(
            raw_url=absolute_url(args.raw),
            out_url=absolute_url(args.out),
            fields=args.fields.split(","),
            shard_size_limit=args.shard_size_limit,
            compression=args.compression,
            storage_options=args.storage_options,
            partition_bytes=args.partition_bytes,
        )
    except ValueError as error:  # pydantic's ValidationError; it never echoes the input (hide_input_in_errors)
        print(f"mds-assets: {error}", file=sys.stderr)
        return 2
    return _run(settings, args)


def _demo(args: argparse.Namespace) -> int:
    raw = Path(args.dir) / "raw"
    if not raw.exists() or not any(raw.iterdir()):
        paths = write_demo_batches(raw)
        print(f"wrote {len(paths)} demo batches under {raw}")
    settings = MDSSettings(
        raw_url=absolute_url(str(raw)),
        out_url=absolute_url(str(Path(args.dir) / "mds")),
        fields=DEFAULT_FIELDS,
        shard_size_limit=args.shard_size_limit,
        compression=args.compression,
        partition_bytes=args.partition_bytes,
    )
    return _run(settings, args)


def _run(settings: MDSSettings, args: argparse.Namespace) -> int:
    try:
        report = build(settings, workers=args.workers, progress=not args.quiet)
    except (OSError, ValueError) as error:
        print(f"mds-assets: {error}", file=sys.stderr)
        return 1
    _print_summary(report, settings)
    return 0 if report.ok else 1


def _print_summary(report: BuildReport, settings: MDSSettings) -> None:
    print(f"partitions built: {len(report.built)}, unchanged: {len(report.unchanged)}, failed: {len(report.failed)}")
    for key, error in sorted(report.failed.items()):
        print(f"FAILED {key}: {error}", file=sys.stderr)
    if report.failed:
        print(f"not published: {report.dataset_state}", file=sys.stderr)
        return
    if not report.published:
        print("no raw batches found: nothing to publish")
        return
    rows, shards = report.published["dagster/row_count"].value, report.published["shards"].value
    print(f"published {rows} samples in {shards} shards at {settings.out_url}")
    for key in report.without_batch:
        print(
            f"note: partition {key} has no raw batch under {settings.raw_url} any more; it stays published "
            f"until you delete {partition_url(settings.out_url, key)}"
        )
    for name, passed in sorted(report.checks.items()):
        print(f"check {name}: {'passed' if passed else 'FAILED'}")
    print("load it with:\n" + report.published["how_to_load"].value.strip("`\n").removeprefix("python\n"))


if __name__ == "__main__":
    sys.exit(main())
