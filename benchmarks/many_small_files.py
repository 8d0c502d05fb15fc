"""Many small raw files against the same records in one file, through `mds-assets build`.

    python benchmarks/many_small_files.py [--files 300] [--records 10] [--large 1000,10000]

Times, each `mds-assets build --workers 2` in a fresh process (start to exit), a DAGSTER_HOME per
dataset (one instance holds one dataset), each created by the dataset's first build:
  * one file: the records of all the small files in a single JSONL file (the baseline);
  * small files: `--files` files of `--records` records each (~1.6 KB a file);
  * no-op rebuild of the small files, and a rebuild after one more small file lands.
Ratios are to the one-file build of the same run. Targets: small files <= 3x, no-op and one
more file <= 2x. With `--large`, for each count: the build, a no-op rebuild and three sensor
ticks (the first after the build, with no cursor; the second with nothing changed; the third
after one more file landed), to show how they grow, with the peak memory of the largest
process of each build. Target: a tick over 100,000 listed files in at most 10 s. The published
dataset's shard count is printed: partitions are groups of files,
so it stays a few shards, not one per file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo's tests/ package
from tests.commands import MDS_ASSETS, build_arguments

FIELDS = "uid,caption,n:int64"
TARGETS = {"small files": 3.0, "no-op rebuild": 2.0, "one more file": 2.0}
TICK_TARGET = 10  # seconds, a sensor tick over 100,000 listed files


def record(file: int, number: int) -> dict[str, object]:
    return {"uid": f"{file}-{number}", "caption": f"hourly drop {file}, record {number}: " + "x" * 80, "n": number}


def write_files(raw: Path, files: range, records: int) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    for file in files:
        lines = "".join(json.dumps(record(file, n)) + "\n" for n in range(records))
        (raw / f"drop-{file:06d}.jsonl").write_text(lines)


def write_one_file(raw: Path, files: int, records: int) -> None:
    raw.mkdir(parents=True)
    with (raw / "all.jsonl").open("w") as out:
        for file in range(files):
            out.writelines(json.dumps(record(file, n)) + "\n" for n in range(records))


def build(raw: Path, out: Path, home: Path) -> tuple[float, float]:
    """Seconds from start to exit, and the peak resident memory in MB of the largest process of the
    build (its orchestrating process or a worker: `wait4`'s usage covers the child and what it waited for)."""
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_DISABLE_TELEMETRY": "1"}
    command = [*MDS_ASSETS, *build_arguments(raw, out, FIELDS), "--workers", "2", "--quiet"]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        if process.returncode != 0:
            stderr.seek(0)
            raise SystemExit(f"build of {raw} failed:\n{stderr.read()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024


def shards(out: Path) -> int:
    from writer import MDSDataset

    return MDSDataset(str(out)).index.num_shards


def sensor_ticks(raw: Path, out: Path, home: Path, files: int, records: int) -> list[float]:
    """Seconds of three ticks of the raw-batch sensor after a build: the first (no cursor), the next
    (nothing changed), and one after one more small file landed (it requests that file's group alone)."""
    os.environ["DAGSTER_HOME"] = str(home)
    from dagster import DagsterInstance, build_sensor_context

    from mds_assets.resources import MDSSettings
    from mds_assets.sensors import raw_batch_sensor

    settings = MDSSettings(raw_url=str(raw), out_url=str(out), fields=FIELDS.split(","))
    times, cursor = [], None
    with DagsterInstance.from_config(str(home)) as instance:
        for expected_runs in (0, 0, 1):
            if expected_runs:
                write_files(raw, range(files, files + 1), records)
            context = build_sensor_context(instance=instance, cursor=cursor, resources={"mds_settings": settings})
            start = time.perf_counter()
            result = raw_batch_sensor(context)
            times.append(time.perf_counter() - start)
            assert len(result.run_requests) == expected_runs, f"{len(result.run_requests)} runs requested"
            cursor = result.cursor
    return times


def compare(root: Path, files: int, records: int) -> None:
    one, many = root / "one", root / "small"
    write_one_file(one / "raw", files, records)
    baseline, _ = build(one / "raw", one / "out", one / "home")
    write_files(many / "raw", range(files), records)
    small, _ = build(many / "raw", many / "out", many / "home")
    noop, _ = build(many / "raw", many / "out", many / "home")
    write_files(many / "raw", range(files, files + 1), records)
    more, _ = build(many / "raw", many / "out", many / "home")
    print(f"one file of {files * records} records: {baseline:.1f} s ({shards(root / 'one' / 'out')} shards)")
    for label, seconds in [("small files", small), ("no-op rebuild", noop), ("one more file", more)]:
        ratio = seconds / baseline
        verdict = "ok" if ratio <= TARGETS[label] else "OVER"
        print(f"{label:>14}: {seconds:6.1f} s  {ratio:4.2f}x one file (target <= {TARGETS[label]}x: {verdict})")
    print(f"{files + 1} small files published as {shards(root / 'small' / 'out')} shards")


def at_scale(root: Path, files: int, records: int) -> None:
    raw, out, home = root / f"raw-{files}", root / f"out-{files}", root / f"home-{files}"
    write_files(raw, range(files), records)
    first, first_peak = build(raw, out, home)
    noop, noop_peak = build(raw, out, home)
    ticks = sensor_ticks(raw, out, home, files, records)
    verdict = "ok" if max(ticks) <= TICK_TARGET else "OVER"
    print(
        f"{files:>6} files: build {first:6.1f} s, no-op rebuild {noop:5.1f} s, sensor tick {ticks[0]:4.1f} s "
        f"(no cursor) / {ticks[1]:4.1f} s (unchanged) / {ticks[2]:4.1f} s (one more file; target <= "
        f"{TICK_TARGET} s: {verdict}), {shards(out)} shards; "
        f"peak RSS of a build process {first_peak:.0f} MB (no-op {noop_peak:.0f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--records", type=int, default=10)
    parser.add_argument("--large", default="", help="comma-separated file counts, e.g. 1000,10000")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    root = Path(tempfile.mkdtemp(prefix="mds-small-files-"))
    try:
        if args.files:
            compare(root, args.files, args.records)
        for count in [int(n) for n in args.large.split(",") if n]:
            at_scale(root, count, args.records)
    finally:
        shutil.rmtree(root)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
