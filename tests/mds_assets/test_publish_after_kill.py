"""`kill -9` of `mds-assets build` at any step of its publish: the next build completes and
publishes every batch (nothing in the instance or the output stays held by the dead process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from writer import MDSDataset
from writer.verify import verify

from ..commands import build_arguments
from .conftest import record, write_batch

pytestmark = pytest.mark.system  # end to end, 2 builds per moment killed at

# The moments of a publish killed at (before each of these steps), which cover its states: the
# lock taken, shards placed beside the old index, the old index removed, the index written.
KILLED_BEFORE = (
    "create <out>/.mds-lock",
    "place <out>/",
    "remove <out>/index.mds",
    "write <out>/mds_partitions.json",  # the old index is gone: no index until the rerun
    "write <out>/index.mds",
    "remove <out>/.mds-lock",
)

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


def run_build(raw: Path, out: Path, kill_at: int, counted: Path) -> subprocess.CompletedProcess[str]:
    """The build of `out` in the instance of its own (one instance, one dataset), killed or not."""
    home = out.parent / f"{out.name}-dagster-home"
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


def clone_with_links(source: Path, target: Path) -> None:
    """A copy of a built output as the build left it (published shards are hard links of the
    partitions' files, here too): every file linked, none copied. Safe to share: a build
    replaces files by name (a new file renamed into place), never writes into one."""
    for folder, _, files in os.walk(source):
        destination = target / Path(folder).relative_to(source)
        destination.mkdir(parents=True, exist_ok=True)
        for name in files:
            os.link(Path(folder) / name, destination / name)


def uids(out: Path) -> list[str]:
    return [sample["uid"] for sample in MDSDataset(str(out), decoders={"uid": bytes.decode})]


@pytest.mark.timeout(900)  # 14 builds
def test_a_build_killed_at_any_step_of_its_publish_is_completed_by_the_next(tmp_path: Path) -> None:
    raw, built = tmp_path / "raw", tmp_path / "built"
    for batch in range(2):
        write_batch(raw, f"b{batch}.jsonl", [record(batch, n) for n in range(30)])
    assert run_build(raw, built, 0, tmp_path / "first.txt").returncode == 0
    write_batch(raw, "b2.jsonl", [record(2, n) for n in range(30)])  # so that the next publish changes the dataset
    dry_out = tmp_path / "dry"
    clone_with_links(built, dry_out)
    dry = run_build(raw, dry_out, 0, tmp_path / "dry.txt")
    assert dry.returncode == 0, dry.stderr
    steps = [step.replace(str(dry_out), "<out>") for step in (tmp_path / "dry.txt").read_text().splitlines()]
    assert "remove <out>/index.mds" in steps and "write <out>/index.mds" in steps, steps
    expected = uids(dry_out)
    assert len(expected) == 90

    moments = [next(k for k, step in enumerate(steps, 1) if step.startswith(prefix)) for prefix in KILLED_BEFORE]
    assert steps.index("remove <out>/index.mds") < moments[3] - 1, steps  # killed while there is no index
    for kill_at in moments:
        step = steps[kill_at - 1]
        out = tmp_path / f"out{kill_at}"
        clone_with_links(built, out)
        killed = run_build(raw, out, kill_at, tmp_path / "killed.txt")
        assert killed.returncode == -signal.SIGKILL, f"not killed before {step}: {killed.stderr}"
        try:
            rerun = run_build(raw, out, 0, tmp_path / "rerun.txt")
        except subprocess.TimeoutExpired:
            raise AssertionError(f"killed before {step}: the next build did not end in {RERUN_TIMEOUT} s") from None
        assert rerun.returncode == 0, f"killed before {step}: {rerun.stderr}"
        assert uids(out) == expected and verify(str(out)).ok, f"killed before {step}"
