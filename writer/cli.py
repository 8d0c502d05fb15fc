"""`mds inspect | verify | head`: look at a dataset from the shell, at any fsspec URL."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from .failures import failure_sentence
from .mdsv2_reader import StreamingFormatDataset
from .reader import MDSDataset
from .secrets import redact
from .verify import verify


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    options = _storage_options(parser, args.storage_options)
    try:
        code: int = args.command(args, options)
        sys.stdout.flush()  # so that a reader gone away (`| head -1`) shows here, not at exit
        return code
    except BrokenPipeError:
        discard_stdout()
        return 1
    except (OSError, ValueError, KeyError) as error:
        print(f"mds: {redact(str(error))}", file=sys.stderr)
        return 1
    except Exception as error:
        print(f"mds: {redact(failure_sentence(error, args.url))}", file=sys.stderr)
        return 1


def _storage_options(parser: argparse.ArgumentParser, text: str | None) -> dict[str, Any] | None:
    """The --storage-options JSON object; anything else is a usage error that never echoes the value
    (it may hold a secret, even though secrets belong in the environment)."""
    if not text:
        return None
    try:
        options = json.loads(text)
    except ValueError as error:
        where = (
            f" (invalid JSON at line {error.lineno} column {error.colno})"
            if isinstance(error, json.JSONDecodeError)
            else ""
        )
        parser.error(f"--storage-options must be a JSON object{where}; the value given is not shown")
    if not isinstance(options, dict):
        parser.error(
            f"--storage-options must be a JSON object, not a JSON {_json_kind(options)}; the value given is not shown"
        )
    return options


def _json_kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(value), "null")


def discard_stdout() -> None:
    """The reader of our output has gone (`mds inspect URL | head -1`): say nothing more.

    As the Python docs' "Note on SIGPIPE" says: point stdout at devnull, so that flushing it at
    exit raises no second BrokenPipeError ("Exception ignored ...").
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (e.g. captured): nothing to flush at exit
        pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mds", description="Inspect and verify .mds datasets: Composer's and MDS v2 (mosaicml-streaming)."
    )
    parser.add_argument(
        "--storage-options", help="JSON object passed to fsspec (prefer AWS_* environment variables for credentials)"
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    inspect = commands.add_parser("inspect", help="fields, shards, samples, bytes, compression, per-shard table")
    inspect.add_argument("url")
    inspect.set_defaults(command=_inspect)
    check = commands.add_parser("verify", help="check everything; exit 0 when the dataset is sound, 1 otherwise")
    check.add_argument("url")
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.set_defaults(command=_verify)
    head = commands.add_parser("head", help="print the first samples")
    head.add_argument("url")
    head.add_argument("-n", type=int, default=5, help="how many samples (default 5)")
    head.add_argument("--field", action="append", help="only this field (repeatable)")
    head.set_defaults(command=_head)
    return parser


def _inspect(args: argparse.Namespace, options: dict[str, Any] | None) -> int:
    dataset = MDSDataset(args.url, storage_options=options)
    if isinstance(dataset, StreamingFormatDataset):
        return _inspect_streaming(args.url, dataset)
    index = dataset.index
    size_format = {0: "constant (format 0)"}.get(
        index.size_format, f"int{8 * index.size_format} (format {index.size_format})"
    )
    print(f"dataset:      {redact(args.url)}")
    print(f"fields:       {', '.join(index.fields)}")
    print(f"shards:       {index.num_shards}")
    print(f"samples:      {index.total_samples}")
    print(f"bytes:        {index.total_bytes} (uncompressed)")
    print(f"compression:  {dataset.compression.scheme}")
    repaired = " (wrapped by the original writer; repaired)" if dataset.repaired_sizes else ""
    print(f"sample sizes: {size_format}{repaired}")
    print()
    print(f"{'shard':<16}{'samples':>12}{'bytes':>16}")
    for number, (samples, size) in enumerate(zip(index.samples_per_shard, index.bytes_per_shard)):
        print(f"{dataset.shard_file(number):<16}{samples:>12}{size:>16}")
    return 0


def _inspect_streaming(url: str, dataset: StreamingFormatDataset) -> int:
    shards = dataset.streaming_index.shards
    settings = shards[0] if shards else None
    print(f"dataset:      {url}")
    print("format:       MDS v2 (mosaicml-streaming, index.json)")
    print(f"columns:      {', '.join(f'{name}:{encoding}' for name, encoding in dataset.columns.items())}")
    print(f"shards:       {len(shards)}")
    print(f"samples:      {len(dataset)}")
    print(f"bytes:        {sum(shard.raw_data.bytes for shard in shards)} (uncompressed)")
    print(f"stored bytes: {sum(shard.stored.bytes for shard in shards)}")
    print(f"compression:  {settings.compression if settings and settings.compression else 'none'}")
    print(
        f"hashes:       {', '.join(sorted(settings.stored.hashes)) if settings and settings.stored.hashes else 'none'}"
    )
    print()
    width = max([16, *(len(shard.stored.basename) + 2 for shard in shards)])
    print(f"{'shard':<{width}}{'samples':>12}{'bytes':>16}{'stored':>16}")
    for shard in shards:
        print(f"{shard.stored.basename:<{width}}{shard.samples:>12}{shard.raw_data.bytes:>16}{shard.stored.bytes:>16}")
    return 0


def _verify(args: argparse.Namespace, options: dict[str, Any] | None) -> int:
    report = verify(args.url, storage_options=options, progress=not args.quiet)
    print(report.text())
    return 0 if report.ok else 1


def _head(args: argparse.Namespace, options: dict[str, Any] | None) -> int:
    dataset = MDSDataset(args.url, decoders="auto", storage_options=options)
    fields = args.field or list(dataset.fields)
    unknown = [field for field in fields if field not in dataset.fields]
    if unknown:
        raise KeyError(f"no field {unknown[0]!r} in {redact(args.url)} (it has: {', '.join(dataset.fields)})")
    for sample_number in range(min(args.n, len(dataset))):
        sample = dataset[sample_number]
        row = {"sample": sample_number, **{field: _printable(sample[field]) for field in fields}}
        print(json.dumps(row, default=str))  # Decimal, PIL images, ...: as their str
    return 0


def _printable(value: Any) -> Any:
    """A decoded value as it is (text, number, JSON); raw bytes as UTF-8 text when they are
    printable text, else as hex — long ones cut to keep a line readable; an image as its
    format, size and mode."""
    if hasattr(value, "getbbox") and hasattr(value, "mode"):  # a PIL image (jpeg and png columns)
        width, height = value.size
        return f"<{value.format or 'image'} {width}x{height} {value.mode}>"
    if not isinstance(value, bytes):
        return value if not isinstance(value, str) or len(value) <= 120 else value[:117] + "..."
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if not text.isprintable() or (value and not text):
        text = "0x" + value.hex()
    return text if len(text) <= 120 else text[:117] + "..."


if __name__ == "__main__":
    sys.exit(main())
