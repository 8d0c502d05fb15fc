"""Dagster's cost per partition: the events a build records, what each costs to store, and a
build on Dagster's own SQLite storages against one on the instance mds-assets writes.

    python benchmarks/dagster_event_cost.py [--partitions 300] [--records 10] [--workers 2]

In one run, on the same `--partitions` small JSONL files, one partition each (`--partition-bytes 1`):
  * the writer alone (the baseline): every partition read and written by `write_partition`, as
    the batch pipeline does, without Dagster, in a fresh process;
  * `mds-assets build` into a DAGSTER_HOME whose dagster.yaml is mds-assets' without its storage
    entries: Dagster's own SQLite storages (a connection opened and closed per event and query);
  * `mds-assets build` into a new DAGSTER_HOME: the dagster.yaml mds-assets writes (the same
    storages keeping their connections open, mds_assets.kept_connection_storage).
Each build is timed start to exit in a fresh process; Dagster's cost per partition is (build -
writer alone) / partitions. The events of each instance are read back by type, per partition and
per run, and must be the same for both. Then the events of one build run are stored again into
a fresh storage of each kind (best of three passes, interleaved), and the run-status query every
materialisation makes is timed on each instance, with `get_run_by_id` for comparison.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo's packages
from benchmarks.many_small_files import write_files
from tests.commands import MDS_ASSETS, build_arguments

FIELDS = "uid,caption,n:int64"
PER_PARTITION = ("ASSET_MATERIALIZATION_PLANNED", "ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION")
STORAGE_ENTRIES = ("run_storage", "event_log_storage")


def writer_alone(raw: Path, out: Path) -> None:
    """Every partition as the batch pipeline reads and writes it, without Dagster."""
    from mds_assets.core.partition_writer import write_partition
    from mds_assets.core.profile import reading
    from mds_assets.resources import MDSSettings

    settings = MDSSettings(raw_url=str(raw), out_url=str(out), fields=FIELDS.split(","), partition_bytes=1)
    options = settings.fsspec_options()
    for group in settings.raw_groups():
        with reading(group, options) as batch:
            records = batch.records()
            write_partition(
                group, settings.selections(), settings.out_url, settings.shard_size_limit, None, options, records
            )


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} … failed:\n{done.stderr[-3000:]}")
    return seconds


def dagster_defaults_home(home: Path) -> None:
    """A DAGSTER_HOME with mds-assets' dagster.yaml less its storage entries: Dagster's own storages."""
    from mds_assets.build import instance_config

    config = yaml.safe_load(instance_config(home))
    for entry in STORAGE_ENTRIES:
        config.pop(entry)
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))


def build(raw: Path, out: Path, home: Path, workers: int) -> float:
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_DISABLE_TELEMETRY": "1"}
    arguments = [*build_arguments(raw, out, FIELDS), "--partition-bytes", "1", "--workers", str(workers), "--quiet"]
    return timed([*MDS_ASSETS, *arguments], env)


def events_by_type(home: Path) -> tuple[dict[str, int], collections.Counter[str], str]:
    """Events by type: of the partitions' own kinds in build runs, by their type; every other
    (run, step and log events, and the publish run's) as "other". Runs by job name; a build run's id."""
    from dagster import DagsterInstance

    runs: collections.Counter[str] = collections.Counter()
    events: dict[str, int] = collections.Counter()
    with DagsterInstance.from_config(str(home)) as instance:
        for run in instance.get_runs():
            runs[run.job_name] += 1
            for record in instance.get_records_for_run(run.run_id, limit=1_000_000).records:
                kind = record.event_log_entry.dagster_event_type
                per_partition = run.job_name == "build_partition" and kind is not None and kind.value in PER_PARTITION
                events[kind.value if kind is not None and per_partition else "other"] += 1
        sample_run = next(run.run_id for run in instance.get_runs() if run.job_name == "build_partition")
    return dict(events), runs, sample_run


def best_of(passes: int, functions: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Each function's best time, the functions interleaved pass after pass."""
    best: dict[str, float] = {}
    for _ in range(passes):
        for label, function in functions.items():
            best[label] = min(best.get(label, float("inf")), function())
    return best


def store_events_again(home: Path, run_id: str, root: Path) -> tuple[int, dict[str, float]]:
    """Seconds per event to store a run's events into a fresh event log of each kind."""
    from dagster import DagsterInstance
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    from mds_assets.kept_connection_storage import KeptConnectionSqliteEventLogStorage

    with DagsterInstance.from_config(str(home)) as instance:
        entries = [record.event_log_entry for record in instance.get_records_for_run(run_id, limit=1_000_000).records]

    def replay(kind: type[SqliteEventLogStorage]) -> Callable[[], float]:
        def one_pass() -> float:
            folder = Path(tempfile.mkdtemp(dir=root))
            storage = kind(str(folder))
            start = time.perf_counter()
            for entry in entries:
                storage.store_event(entry)
            seconds = (time.perf_counter() - start) / len(entries)
            storage.dispose()
            shutil.rmtree(folder)
            return seconds

        return one_pass

    return len(entries), best_of(
        3, {"dagster": replay(SqliteEventLogStorage), "kept": replay(KeptConnectionSqliteEventLogStorage)}
    )


def run_status_queries(homes: dict[str, Path], run_ids: dict[str, str], queries: int = 50) -> dict[str, float]:
    """Seconds per run-status query on each instance: the one the batch pipeline asks before every
    materialisation (the run's id among the ended runs), and `get_run_by_id`, which loads the run
    and its config (a range run's lists every file of its range)."""
    from dagster import DagsterInstance, RunsFilter

    from mds_assets.assets.batch_pipeline import RUN_ENDED

    instances = {label: DagsterInstance.from_config(str(home)) for label, home in homes.items()}

    def asking(label: str, loads_the_run: bool) -> Callable[[], float]:
        instance, run_id = instances[label], run_ids[label]
        ended = RunsFilter(run_ids=[run_id], statuses=list(RUN_ENDED))

        def one_pass() -> float:
            start = time.perf_counter()
            for _ in range(queries):
                instance.get_run_by_id(run_id) if loads_the_run else instance.get_run_ids(ended, limit=1)
            return (time.perf_counter() - start) / queries

        return one_pass

    try:
        return best_of(
            3, {f"{label} {query}": asking(label, query == "run") for label in instances for query in ("ids", "run")}
        )
    finally:
        for instance in instances.values():
            instance.dispose()


def compare(root: Path, partitions: int, records: int, workers: int) -> None:
    raw = root / "raw"
    write_files(raw, range(partitions), records)
    script = [sys.executable, str(Path(__file__).resolve()), "--writer-alone", str(raw), str(root / "out-writer")]
    baseline = timed(script)
    homes = {"dagster": root / "home-dagster", "kept": root / "home-kept"}
    dagster_defaults_home(homes["dagster"])
    seconds = {label: build(raw, root / f"out-{label}", home, workers) for label, home in homes.items()}
    labels = {"dagster": "Dagster's own SQLite storages", "kept": "mds-assets' instance (kept open)"}
    print(f"{partitions} partitions of {records} records, `mds-assets build --workers {workers}`")
    print(f"{'writer alone (no Dagster)':>34}: {baseline:6.1f} s")
    for label, took in seconds.items():
        per_partition = 1000 * (took - baseline) / partitions
        ratio = took / baseline
        print(
            f"{labels[label]:>34}: {took:6.1f} s  {ratio:5.1f}x the writer alone, {per_partition:5.0f} ms a partition"
        )
    print(f"{'kept / Dagster own':>34}: {seconds['kept'] / seconds['dagster']:.2f}x")

    counted = {label: events_by_type(home) for label, home in homes.items()}
    events, runs, sample_run = counted["dagster"]
    same = all(counted[label][0] == events for label in counted)
    run_count = sum(runs.values())
    print(
        f"events read back ({'the same in both instances' if same else 'DIFFERENT: ' + repr(counted)}), "
        f"{run_count} runs ({', '.join(f'{n} {job}' for job, n in runs.items())}):"
    )
    for kind in PER_PARTITION:
        print(f"{kind:>34}: {events.get(kind, 0):6d}  {events.get(kind, 0) / partitions:4.2f} a partition")
    print(f"{'every other event':>34}: {events['other']:6d}  {events['other'] / run_count:4.1f} a run")

    count, per_event = store_events_again(homes["dagster"], sample_run, root)
    print(f"store_event, the {count} events of one build run stored again (best of 3):")
    print(f"{'Dagster own':>34}: {1000 * per_event['dagster']:6.2f} ms an event")
    ratio = per_event["kept"] / per_event["dagster"]
    print(f"{'kept open':>34}: {1000 * per_event['kept']:6.2f} ms an event  {ratio:.2f}x")
    run_ids = {label: counted[label][2] for label in homes}
    per_query = run_status_queries(homes, run_ids)
    print("run-status query, asked before every materialisation is recorded (best of 3 x 50):")
    for query, named in [("ids", "the run's id among ended runs"), ("run", "get_run_by_id (the whole run)")]:
        dagster, kept = per_query[f"dagster {query}"], per_query[f"kept {query}"]
        times = f"{1000 * dagster:6.2f} ms on Dagster's own, {1000 * kept:6.2f} ms kept open"
        print(f"{named:>34}: {times} ({kept / dagster:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=300)
    parser.add_argument("--records", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--writer-alone", nargs=2, metavar=("RAW", "OUT"), help="(the baseline, run by this script)")
    args = parser.parse_args()
    if args.writer_alone:
        writer_alone(Path(args.writer_alone[0]), Path(args.writer_alone[1]))
        return
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    root = Path(tempfile.mkdtemp(prefix="mds-event-cost-"))
    try:
        compare(root, args.partitions, args.records, args.workers)
    finally:
        shutil.rmtree(root)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
