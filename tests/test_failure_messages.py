"""Every failure of `mds-assets build` and `mds` ends in a sentence naming what failed (never a
traceback), and a failed build's last line says what the output holds, read back."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from mds_assets.core.raw_sources import RawBatch, RawDataError, read_records
from writer import StreamingDatasetWriter
from writer.merge import merge_datasets
from writer.storage import Storage

from .commands import MDS_ASSETS, build_arguments
from .system.s3_server import free_port

REPO = Path(__file__).resolve().parents[1]


def _run(command: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), **(env or {})},
        cwd=tmp_path,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )


def _assert_one_sentence(done: subprocess.CompletedProcess[str], prefix: str, *named: str) -> list[str]:
    """Exit 1, no traceback, the error one line starting with `prefix` and naming each of `named`."""
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output and "Error:" not in done.stderr.splitlines()[0][:20], output
    errors = [line for line in done.stderr.splitlines() if line.startswith(prefix)]
    assert errors and all(name in errors[0] for name in named), output
    return done.stderr.splitlines()


def _records(count: int) -> list[dict[str, object]]:
    return [{"uid": str(n), "text": f"sample {n}"} for n in range(count)]


def _write_jsonl(path: Path, records: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def unreachable_s3() -> Iterator[dict[str, str]]:
    """The environment of an S3 endpoint nobody listens on (an unused 127.0.0.1 port)."""
    yield {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "example",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
    }


# -- S3 unreachable, and an option s3fs does not know ----------------------------------------


def test_a_build_whose_s3_raw_url_is_unreachable_says_so_and_what_the_output_holds(tmp_path, unreachable_s3):
    out = tmp_path / "out"
    done = _run([*MDS_ASSETS, *build_arguments("s3://bucket/raw", out, "uid"), "--quiet"], tmp_path, unreachable_s3)
    lines = _assert_one_sentence(done, "mds-assets: ", "s3://bucket/raw", "could not be reached")
    assert lines[-1] == f"not published: {out} held no dataset and still holds none", lines


@pytest.mark.parametrize("command", [["inspect"], ["verify", "--quiet"], ["head"]])
def test_mds_on_an_unreachable_s3_url_says_so_in_one_sentence(tmp_path, unreachable_s3, command):
    done = _run([sys.executable, "-m", "writer.cli", *command, "s3://bucket/ds"], tmp_path, unreachable_s3)
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in output, output
    assert "s3://bucket/ds" in output and "could not be reached" in output, output


@pytest.fixture
def without_s3fs(tmp_path) -> dict[str, str]:
    """The environment of a machine without the `s3` extra: an `s3fs` that cannot be imported."""
    hidden = tmp_path / "without-s3fs"
    hidden.mkdir()
    (hidden / "s3fs.py").write_text('raise ImportError("s3fs is not installed")\n')
    return {"PYTHONPATH": str(hidden)}


def test_an_s3_url_without_the_s3_extra_says_what_to_install(tmp_path, without_s3fs):
    done = _run(
        [*MDS_ASSETS, *build_arguments("s3://bucket/raw", tmp_path / "out", "uid"), "--quiet"], tmp_path, without_s3fs
    )
    _assert_one_sentence(done, "mds-assets: ", "s3://bucket/raw", "pip install 'mds-assets[s3]'")
    done = _run([sys.executable, "-m", "writer.cli", "inspect", "s3://bucket/ds"], tmp_path, without_s3fs)
    _assert_one_sentence(done, "mds: ", "s3://bucket/ds", "pip install 'mds-assets[s3]'")


def test_an_unknown_s3_storage_option_is_named(tmp_path, unreachable_s3):
    arguments = [*build_arguments("s3://bucket/raw", tmp_path / "out", "uid"), "--quiet"]
    done = _run([*MDS_ASSETS, *arguments, "--storage-options", '{"bogus_option": 1}'], tmp_path, unreachable_s3)
    _assert_one_sentence(done, "mds-assets: ", "storage option", "bogus_option")
    done = _run(
        [sys.executable, "-m", "writer.cli", "--storage-options", '{"bogus_option": 1}', "inspect", "s3://b/ds"],
        tmp_path,
        unreachable_s3,
    )
    _assert_one_sentence(done, "mds: ", "storage option", "bogus_option")


# -- a build worker killed --------------------------------------------------------------------

# `mds-assets build` whose pool workers kill themselves (SIGKILL) as they begin to write a partition.
_KILLED_WORKER = """
import os, signal, sys
from writer import storage
from mds_assets.cli import main

parent = os.getpid()

def die_in_worker(operation, url):
    if os.getpid() != parent and "/partitions/" in url:
        os.kill(os.getpid(), signal.SIGKILL)

storage.before_change = die_in_worker
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_build_worker_fails_its_partitions_with_a_sentence_and_the_output_is_read_back(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    for batch in range(2):
        _write_jsonl(raw / f"b{batch}.jsonl", _records(5))
    done = _run(
        [
            sys.executable,
            "-c",
            _KILLED_WORKER,
            *build_arguments(raw, out, "uid,text"),
            "--quiet",
            "--workers",
            "2",
            "--partition-bytes",
            "1",
        ],
        tmp_path,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in output and "BrokenProcessPool" not in output, output
    # both ranges' workers died the same way: one line names both partitions
    assert "FAILED b0, b1: a build worker process ended abruptly" in output, output
    assert done.stderr.splitlines()[-1] == f"not published: {out} held no dataset and still holds none", output


# -- full disks ----------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted for the test (the tests run as root in CI)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root, as in CI): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(disk: Path) -> None:
    """Write a file until the disk is full."""
    descriptor = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(descriptor, bytes(4096)):
            pass
    except OSError:
        pass
    finally:
        os.close(descriptor)


def test_a_full_disk_under_dagster_home_is_a_sentence_naming_it(tmp_path, small_disk):
    raw, out = tmp_path / "raw", tmp_path / "out"
    _write_jsonl(raw / "b0.jsonl", _records(5))
    home = small_disk / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    _fill(small_disk)
    done = _run([*MDS_ASSETS, *build_arguments(raw, out, "uid"), "--quiet"], tmp_path, {"DAGSTER_HOME": str(home)})
    lines = _assert_one_sentence(done, "mds-assets: ", f"the Dagster instance at {home}")
    assert lines[-1] == f"not published: {out} held no dataset and still holds none", lines


def test_a_publish_on_a_full_disk_names_the_file(tmp_path, small_disk):
    # Partitions on the big disk: placing their shards on the full one is a copy (no hard link across disks).
    parts = [str(tmp_path / f"part{n}") for n in range(2)]
    for part in parts:
        with StreamingDatasetWriter(part, ["a"], shard_size_limit=1 << 16) as writer:
            writer.write_samples(({"a": os.urandom(1000)} for _ in range(100)), use_tqdm=False)
    _fill(small_disk)
    with pytest.raises(OSError, match="No space left on device") as raised:
        merge_datasets(parts, str(small_disk / "out"))
    assert re.search(rf"'{small_disk}/out/[^/']+'", str(raised.value)), str(raised.value)


@pytest.mark.parametrize("change", ["write", "create", "copy"])
def test_every_change_to_storage_on_a_full_disk_names_its_file(tmp_path, small_disk, change):
    source = Storage(str(tmp_path / "source"))
    source.make_root()
    source.write_atomic("shard", os.urandom(64 * 1024))
    _fill(small_disk)
    (small_disk / "full").mkdir()
    target = Storage(str(small_disk / "full"))
    actions = {
        "write": lambda: target.write_atomic("index.mds", os.urandom(64 * 1024)),
        "create": lambda: target.create_exclusive(".lock", os.urandom(64 * 1024)),
        "copy": lambda: target.link_or_copy(source, "shard", "000000.mds"),
    }
    with pytest.raises(OSError, match="No space left on device") as raised:
        actions[change]()
    assert str(small_disk / "full") in str(raised.value), str(raised.value)


# -- a corrupt gzip batch ------------------------------------------------------------------


def _corrupt_gzip(path: Path, lines: int) -> None:
    """`lines` sound lines, then a deflate block of the reserved type 3: zlib's "Error -3 while
    decompressing data: invalid block type" once every line has been read."""
    text = "".join(json.dumps({"uid": str(n), "text": f"sample {n}"}) + "\n" for n in range(lines))
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    data = compressor.compress(text.encode()) + compressor.flush(zlib.Z_FULL_FLUSH) + b"\x06" + bytes(64)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_a_corrupt_gzip_batch_names_the_batch_and_the_line_reached(tmp_path):
    path = tmp_path / "raw" / "b.jsonl.gz"
    _corrupt_gzip(path, 4000)
    batch = RawBatch("b.jsonl.gz", str(path), "jsonl", "f", path.stat().st_size)
    read = 0
    with pytest.raises(RawDataError) as raised:
        for _ in read_records(batch):
            read += 1
    assert read > 3000  # the lines before the damage are read (those inflated with it are lost)
    assert str(raised.value) == (
        f"batch b.jsonl.gz, line {read + 1}: unreadable (Error -3 while decompressing data: invalid block type)"
    )


def test_a_build_of_a_corrupt_gzip_batch_fails_it_with_a_sentence(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    _corrupt_gzip(raw / "b.jsonl.gz", 4000)
    done = _run([*MDS_ASSETS, *build_arguments(raw, out, "uid"), "--quiet"], tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in output, output
    assert "FAILED b: batch b.jsonl.gz, line " in output, output


def test_an_unreadable_dataset_shard_is_still_named(tmp_path):
    """The sentence for a damaged dataset is unchanged by the catch-all: it names the file."""
    with StreamingDatasetWriter(str(tmp_path / "ds"), ["uid"]) as writer:
        writer.write_samples([{"uid": b"x"}], use_tqdm=False)
    (tmp_path / "ds" / "000000.mds").write_bytes(b"")
    done = _run([sys.executable, "-m", "writer.cli", "head", str(tmp_path / "ds")], tmp_path)
    _assert_one_sentence(done, "mds: ", str(tmp_path / "ds" / "000000.mds"))
