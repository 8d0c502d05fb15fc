"""`kill -9` of `mds-assets build` at any step of its publish: the next build completes and
publishes every batch (nothing in the instance or the output stays held by the dead process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from writer import MDSDataset
from writer.verify import verify

from ..commands import build_arguments
from .conftest import record, write_batch

FIELDS = "uid,n:int64"
RERUN_TIMEOUT = 120  # a rerun that waits for the dead run would never end: this bounds it

# `mds-assets build`, killed with SIGKILL by itself just before its k-th change to the published
# dataset's own files (the publish: locks, shards placed, sidecars, index); k = 0 counts them.
KILLED_BUILD = textwrap.dedent("""
    import os, signal, sys
    from writer import storage
    from mds_assets.cli import main

    out, kill_at, count_file = sys.argv[1].rstrip("/"), int(sys.argv[2]), sys.argv[3]
    seen = []

    def kill_before(operation, url):
        if url.startswith(out) and "/partitions" not in url[len(out):]:
            seen.append(f"{operation} {url}")
            if len(seen) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    storage.before_change = kill_before
    status = main(sys.argv[4:])
    with open(count_file, "w") as counted:
        counted.write("\\n".join(seen))
    sys.exit(status)
""")


def run_build(raw: Path, out: Path, home: Path, kill_at: int, counted: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-c",
        KILLED_BUILD,
        str(out),
        str(kill_at),
        str(counted),
        *build_arguments(raw, out, FIELDS),
        "--workers",
        "1",
        "--quiet",
    ]
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_DISABLE_TELEMETRY": "1"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=RERUN_TIMEOUT)


def uids(out: Path) -> list[str]:
    return [sample["uid"] for sample in MDSDataset(str(out), decoders={"uid": bytes.decode})]


def test_a_build_killed_at_any_step_of_its_publish_is_completed_by_the_next(tmp_path: Path) -> None:
    raw, home = tmp_path / "raw", tmp_path / "home"
    for batch in range(2):
        write_batch(raw, f"b{batch}.jsonl", [record(batch, n) for n in range(30)])
    dry_out = tmp_path / "dry"
    assert run_build(raw, dry_out, home, 0, tmp_path / "dry.txt").returncode == 0
    write_batch(raw, "b2.jsonl", [record(2, n) for n in range(30)])  # a publish that changes the dataset
    steps = run_build(raw, dry_out, home, 0, tmp_path / "dry.txt")
    assert steps.returncode == 0, steps.stderr
    publish_steps = (tmp_path / "dry.txt").read_text().splitlines()
    assert len(publish_steps) >= 5, publish_steps
    expected = uids(dry_out)
    assert len(expected) == 90

    for kill_at in range(1, len(publish_steps) + 1):
        out = tmp_path / f"out{kill_at}"
        (raw / "b2.jsonl").rename(tmp_path / "b2.jsonl")
        first = run_build(raw, out, home, 0, tmp_path / "first.txt")
        assert first.returncode == 0, first.stderr
        (tmp_path / "b2.jsonl").rename(raw / "b2.jsonl")
        killed = run_build(raw, out, home, kill_at, tmp_path / "killed.txt")
        assert killed.returncode == -signal.SIGKILL, f"not killed before {publish_steps[kill_at - 1]}"
        try:
            rerun = run_build(raw, out, home, 0, tmp_path / "rerun.txt")
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"killed before {publish_steps[kill_at - 1]}: the next build did not end in {RERUN_TIMEOUT} s"
            ) from None
        assert rerun.returncode == 0, f"killed before {publish_steps[kill_at - 1]}: {rerun.stderr}"
        assert uids(out) == expected and verify(str(out)).ok, f"killed before {publish_steps[kill_at - 1]}"
