"""`mds` as a shell command: bad --storage-options refused unechoed, a reader that stops early (`| head -1`)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import writer
from writer import StreamingDatasetWriter

REPO = Path(writer.__file__).resolve().parent.parent
SECRET = "hunter2-AKIA-not-a-real-key"


def mds_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "writer.cli", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def many_shards(tmp_path_factory):
    """3000 one-sample shards: `mds inspect` prints ~130 KB, more than a pipe holds."""
    directory = tmp_path_factory.mktemp("many") / "ds"
    with StreamingDatasetWriter(str(directory), ["uid", "data"], shard_size_limit=26) as writer:
        writer.write_samples(({"uid": f"{ix:06}".encode(), "data": b"abcd"} for ix in range(3000)), use_tqdm=False)
    return directory


@pytest.mark.parametrize(
    "options",
    [f'["{SECRET}"]', f'"{SECRET}"', "42", "null", f'[{{"key": "{SECRET}"}}]', f'{{"key": "{SECRET}"', f"{SECRET}"],
)
def test_storage_options_that_are_not_a_json_object_are_refused_without_echoing_them(many_shards, options):
    result = subprocess.run(
        mds_command("--storage-options", options, "inspect", str(many_shards)),
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "--storage-options must be a JSON object" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_a_json_object_is_still_passed_to_fsspec(many_shards):
    result = subprocess.run(
        mds_command("--storage-options", "{}", "inspect", str(many_shards)),
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert result.returncode == 0 and "shards:       3000" in result.stdout


@pytest.mark.parametrize("args", [["inspect"], ["head", "-n", "3000"]])
def test_a_reader_that_stops_early_ends_the_command_quietly(many_shards, args):
    process = subprocess.Popen(
        mds_command(*args, str(many_shards)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
    )
    first = process.stdout.readline()
    process.stdout.close()  # like `| head -1`: the rest of the output has nowhere to go
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=60) == 1
    assert first  # it did start printing
    assert stderr == b"", stderr.decode()  # no "[Errno 32] Broken pipe", no "Exception ignored"
