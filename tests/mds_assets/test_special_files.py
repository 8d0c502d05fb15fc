"""Only regular files (and directories, for file-tree batches) under the raw URL are batches: a FIFO
or a device with a batch's name is refused, naming it, before it is opened."""

from __future__ import annotations

import os
import resource
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mds_assets.core.raw_sources import list_batches
from writer import MDSDataset

from ..commands import MDS_ASSETS, build_arguments
from .conftest import FIELDS, record, write_batch

ADDRESS_SPACE_LIMIT = 4 << 30  # a build reading a device without end stops here, not at the machine's memory


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))


def _build(raw: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`mds-assets build` in a process of bounded memory, waited for at most 120 s."""
    return subprocess.run(
        [*MDS_ASSETS, *build_arguments(raw, tmp_path / "out", FIELDS), "--quiet", "--workers", "1"],
        capture_output=True,
        text=True,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path / "home")},
        cwd=tmp_path,
        timeout=120,
        stdin=subprocess.DEVNULL,
        preexec_fn=_limited,
    )


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _zero_device(path: Path) -> Path:
    """A character device like /dev/zero (major 1, minor 5), made where a batch would be."""
    os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 5))
    return path


@pytest.mark.parametrize(("name", "make"), [("b.jsonl", _fifo), ("z.jsonl", _zero_device), ("p.parquet", _fifo)])
def test_a_special_file_named_like_a_batch_fails_its_partition_naming_it_and_the_others_build(tmp_path, name, make):
    raw = tmp_path / "raw"
    write_batch(raw, "a.jsonl", [record(0, n) for n in range(10)])
    make(raw / name)
    done = _build(raw, tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert f"batch {name}: not a regular file" in output and "Traceback" not in output, output
    assert "not published" in output, output  # the build's last word: what the output holds


_READ_REPLACED = """
import os, stat, sys
from mds_assets.core.raw_sources import RawDataError, list_batches, read_records
raw, kind = sys.argv[1], sys.argv[2]
(batch,) = list_batches(raw)
os.unlink(raw + "/b.jsonl")  # replaced by a special file between the listing and the read
if kind == "fifo":
    os.mkfifo(raw + "/b.jsonl")
else:
    os.mknod(raw + "/b.jsonl", 0o644 | stat.S_IFCHR, os.makedev(1, 5))
try:
    print(sum(1 for _ in read_records(batch)), "records")
except RawDataError as error:
    print(error)
"""


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_reading_a_batch_that_became_a_special_file_is_refused_before_opening_it(tmp_path, kind):
    raw = tmp_path / "raw"
    write_batch(raw, "b.jsonl", [record(0, 1)])
    done = subprocess.run(
        [sys.executable, "-c", _READ_REPLACED, str(raw), kind],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        preexec_fn=_limited,
    )
    assert done.stdout.strip() == "batch b.jsonl: not a regular file (a FIFO), not opened" or (
        kind == "device" and done.stdout.strip() == "batch b.jsonl: not a regular file (a character device), not opened"
    ), done.stdout + done.stderr


def test_a_link_inside_the_raw_root_to_a_fifo_is_refused(tmp_path):
    raw = tmp_path / "raw"
    write_batch(raw, "a.jsonl", [record(0, 1)])
    _fifo(raw / "pipe")
    (raw / "c.jsonl").symlink_to(raw / "pipe")
    batches = {batch.name: batch for batch in list_batches(str(raw))}
    assert batches["c.jsonl"].layout == "refused" and "not a regular file" in batches["c.jsonl"].problem
    assert batches["a.jsonl"].layout == "jsonl"


def test_special_files_with_other_names_are_no_batches(tmp_path):
    raw = tmp_path / "raw"
    write_batch(raw, "a.jsonl", [record(0, n) for n in range(3)])
    _fifo(raw / "README")
    assert [batch.name for batch in list_batches(str(raw))] == ["a.jsonl"]
    done = _build(raw, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(MDSDataset(str(tmp_path / "out"))) == 3
