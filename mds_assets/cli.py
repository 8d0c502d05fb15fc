"""`mds-assets build | prune | demo`: build datasets through Dagster from the shell."""

from __future__ import annotations

import gc

# The imports below (Dagster, SQLAlchemy, this code) create ~180,000 objects that live as long as the
# process: the cycle collector would walk the growing heap again and again while they load (~0.2 s of
# CPU at every start, measured), and again at its full collections after. It is off while they load,
# and they go to its permanent generation (which fork shares with build workers untouched).
gc.disable()

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from writer.cli import discard_stdout
from writer.failures import failure_sentence, one_line
from writer.published import PublishedState, describe_change, read_state
from writer.secrets import redact
from writer.storage import Storage
from writer.writer import DEFAULT_SHARD_SIZE_LIMIT

from . import settings as environment
from .build import BuildReport, build, dagster_home
from .core.demo_data import write_demo_batches
from .core.grouping import SHARDS_PER_PARTITION
from .core.layout import partition_url
from .core.output_format import DEFAULT_FORMAT, FORMATS
from .core.raw_sources import WHAT_A_BATCH_IS
from .core.selection import json_type
from .core.sizes import format_size, parse_size
from .core.wording import first_names
from .prune import prune
from .resources import DEFAULT_FIELDS, MDSSettings, absolute_url

gc.freeze()
gc.enable()


def main(argv: Sequence[str] | None = None) -> int:
    """The program (`argv` None: the command line's) or, given `argv`, one command in this process."""
    args = _parser().parse_args(argv)
    try:
        code: int = args.command(args)
        sys.stdout.flush()  # so that a reader gone away (`| head -1`) shows here, not at exit
        return code
    except BrokenPipeError:
        discard_stdout()
        return 1
    finally:
        if argv is None:  # the interpreter exits next
            # Every object alive goes to the collector's permanent generation: the exit then skips the
            # cycle collections over Dagster's ~180,000 objects (~0.6 s of CPU at the end of every
            # command, measured); it still runs atexit handlers, flushes and closes files.
            gc.freeze()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mds-assets", description="Build .mds datasets through Dagster.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    build_command = commands.add_parser("build", help="build what is missing or changed, then publish")
    build_command.add_argument("--raw", required=True, help="fsspec URL of the raw batches")
    build_command.add_argument("--out", required=True, help="fsspec URL of the published dataset")
    build_command.add_argument("--fields", required=True, help="name[:encoding],... e.g. uid,text,img:base64")
    build_command.add_argument(
        "--adopt-output",
        action="store_true",
        help="take over an --out holding an .mds dataset another writer wrote (it is replaced)",
    )
    build_command.add_argument(
        "--verify",
        action="store_true",
        help="first read every shard against its manifest's CRC-32; rebuild what is damaged",
    )
    _add_common(build_command)
    build_command.set_defaults(command=_build)
    prune_command = commands.add_parser("prune", help="remove partitions whose raw batch is gone")
    prune_command.add_argument("--raw", required=True, help="fsspec URL of the raw batches")
    prune_command.add_argument("--out", required=True, help="fsspec URL of the published dataset")
    prune_command.add_argument(
        "--storage-options", type=_json_object, default={}, help="JSON fsspec options (no credentials)"
    )
    prune_command.add_argument(
        "--allow-empty-raw",
        action="store_true",
        help="remove every partition when the raw URL lists no batch (refused otherwise)",
    )
    prune_command.set_defaults(command=_prune)
    demo = commands.add_parser("demo", help="generate a demo raw dataset under ./data/raw and build ./data/mds")
    demo.add_argument("--dir", default="data", help="where raw/ and mds/ go (default: data)")
    _add_common(demo)
    demo.set_defaults(command=_demo)
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shard-size-limit",
        type=_size,
        default=DEFAULT_SHARD_SIZE_LIMIT,
        help=f"most bytes per shard: 16MiB, 64MB or bytes (default {format_size(DEFAULT_SHARD_SIZE_LIMIT)})",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=DEFAULT_FORMAT,
        help="composer: MDS v1 for Composer 0.10.1 (default); streaming: MDS v2 for mosaicml-streaming",
    )
    parser.add_argument(
        "--compression",
        default=None,
        help="gz or gz:0..gz:9; with --format streaming also zstd, zstd:1..zstd:22, br, bz2, snappy (default: none)",
    )
    parser.add_argument(
        "--partition-bytes",
        type=_size,
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
    parser.add_argument("--workers", type=_positive_integer, default=2, help="partitions built at once (default 2)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _size(text: str) -> int:
    """A size flag: `16MiB`, `64MB` or a number of bytes (core.sizes)."""
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive_integer(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number, 1 or more")
    return int(text)


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


def _build(args: argparse.Namespace) -> int:
    try:
        settings = MDSSettings(
            raw_url=absolute_url(args.raw),
            out_url=absolute_url(args.out),
            fields=args.fields.split(","),
            shard_size_limit=args.shard_size_limit,
            compression=args.compression,
            format=args.format,
            storage_options=args.storage_options,
            adopt_output=args.adopt_output,
            partition_bytes=args.partition_bytes,
        )
    except ValueError as error:  # pydantic's ValidationError; it never echoes the input (hide_input_in_errors)
        print(f"mds-assets: {_settings_problem(error)}", file=sys.stderr)
        return 2
    return _run(settings, args)


def _prune(args: argparse.Namespace) -> int:
    out_url = absolute_url(args.out)
    try:
        report = prune(absolute_url(args.raw), out_url, args.storage_options or None, args.allow_empty_raw)
    except (OSError, ValueError) as error:
        print(f"mds-assets: {error}", file=sys.stderr)
        return 1
    if not report.removed and not report.unregistered:
        print("every partition has its raw batch: nothing to prune")
        return 0
    for key in report.removed:
        print(f"removed partition {key} (its raw batch is gone): {partition_url(out_url, key)}")
    for key in report.unregistered:
        print(f"removed partition key {key} from the Dagster instance")
    print("the next publish (mds-assets build, or publish_index) leaves them out of the published dataset")
    return 0


def _settings_problem(error: ValueError) -> str:
    """One line per refused setting, `setting: why` (pydantic's own text spans lines and links)."""
    if not isinstance(error, ValidationError):
        return str(error)
    return "; ".join(
        f"{'.'.join(map(str, problem['loc']))}: {problem['msg'].removeprefix('Value error, ')}"
        for problem in error.errors()
    )


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
        format=args.format,
        partition_bytes=args.partition_bytes,
    )
    return _run(settings, args)


def _run(settings: MDSSettings, args: argparse.Namespace) -> int:
    before = _read_back(settings)
    try:
        environment.check_environment()  # the runs load the code location, which reads every MDS_* variable
        report = build(
            settings, workers=args.workers, progress=not args.quiet, verify=getattr(args, "verify", False)
        )  # `demo` has no --verify
    except Exception as error:  # every failure ends in a sentence, then what --out holds
        _say_what_out_holds(f"mds-assets: {_build_failure(error, settings)}", settings, before)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: the runs it started are failed by Dagster
        interrupted = (
            "mds-assets: interrupted; the partitions built so far are kept: the same command finishes the build"
        )
        _say_what_out_holds(interrupted, settings, before)
        return 130  # the shell's code for a command ended by SIGINT
    _print_summary(report, settings)
    return 0 if report.ok else 1


def _grouped_by_error(failed: dict[str, str]) -> list[tuple[list[str], str]]:
    """Failed partitions that share an error (a misspelt field fails them all) as one line each."""
    keys_by_error: dict[str, list[str]] = {}
    for key, error in sorted(failed.items()):
        keys_by_error.setdefault(error, []).append(key)
    return [(keys, error) for error, keys in keys_by_error.items()]


def _build_failure(error: Exception, settings: MDSSettings) -> str:
    """One sentence for a build that stopped: Dagster's own storage (sqlalchemy errors name no
    folder), storage that did not answer, or the error's own message."""
    if type(error).__module__.startswith(("sqlalchemy", "sqlite3")):
        database_error = getattr(error, "orig", None) or error  # sqlalchemy's wrapper adds its SQL and a link
        return f"the Dagster instance at {dagster_home()} (DAGSTER_HOME) could not be used: {one_line(database_error)}"
    return failure_sentence(error, f"{settings.raw_url} or {settings.out_url}")


def _read_back(settings: MDSSettings) -> PublishedState:
    """What --out holds now; never raises (a store that cannot be read is said to be unreadable)."""
    try:
        return read_state(Storage(settings.out_url, settings.fsspec_options()))
    except Exception as error:  # e.g. an unknown protocol or option of the out URL
        return PublishedState(None, unreadable=failure_sentence(error, settings.out_url))


def _say_what_out_holds(failure: str, settings: MDSSettings, before: PublishedState) -> None:
    """The failure, then what --out holds now, read back and compared with `before`."""
    print(redact(failure), file=sys.stderr)
    state = describe_change(settings.out_url, before, _read_back(settings), None)
    print(f"not published: {redact(state)}", file=sys.stderr)


def _no_batch_note(names: list[str], raw_url: str) -> str:
    shown = first_names(sorted(names))
    return (
        f"note: {len(names)} file(s) under {raw_url} hold records by their names but are no batch, not read: "
        f"{shown}; {WHAT_A_BATCH_IS}"
    )


def _print_summary(report: BuildReport, settings: MDSSettings) -> None:
    for where, problem in sorted(report.damaged.items()):
        print(f"damaged {where}: {problem} (cleared: this build rebuilds or places it again)")
    print(f"partitions built: {len(report.built)}, unchanged: {len(report.unchanged)}, failed: {len(report.failed)}")
    for keys, error in _grouped_by_error(report.failed):
        print(f"FAILED {', '.join(keys)}: {redact(error)}", file=sys.stderr)
    if report.no_batch and (report.built or report.unchanged or report.failed):  # else said below
        print(_no_batch_note(report.no_batch, settings.raw_url))
    if report.failed:
        print(f"not published: {report.dataset_state}", file=sys.stderr)
        return
    if not report.published:
        holds = f" (it holds {first_names(sorted(report.no_batch))})" if report.no_batch else ""
        print(f"no raw batches found under {settings.raw_url}{holds}: nothing to publish")
        print(f"  {WHAT_A_BATCH_IS}")
        return
    rows, shards = report.published["dagster/row_count"].value, report.published["shards"].value
    print(f"published {rows} samples in {shards} shards at {settings.out_url}")
    for key in report.without_batch:
        print(
            f"note: partition {key} has no raw batch under {settings.raw_url} any more; it stays published "
            "until `mds-assets prune` removes it"
        )
    for name, passed in sorted(report.checks.items()):
        why = report.check_problems.get(name)
        print(f"check {name}: {'passed' if passed else 'FAILED'}" + (f": {redact(why)}" if why else ""))
    print("load it with:\n" + report.published["how_to_load"].value.strip("`\n").removeprefix("python\n"))


if __name__ == "__main__":
    sys.exit(main())
