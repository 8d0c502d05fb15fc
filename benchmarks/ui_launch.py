"""A partition run launched from the UI against `mds-assets build` of the same batch.

    python -m benchmarks.ui_launch [--records 250] [--repeats 3] [--instance-config FILE]

Writes one JSONL batch (`--records` records like the tests'), then times, best of `--repeats`:

  * baseline: `mds-assets build` of that batch in a fresh process into a fresh output (its
    build_partition run, then publish_index and the checks), with one DAGSTER_HOME for all
    repeats (as a user's `.dagster_home`); measured `--repeats` times before `dagster dev`
    starts and again after it stops, so an idle server never slows it down;
  * UI: `dagster dev` (webserver + daemon) as the system tests start it, its sensors stopped
    (so only our runs run); each repeat writes a new batch with the same records
    (batch-1, batch-2, ...), registers its partition and launches `build_partition` for it
    through GraphQL, as the Launchpad does, and times launch to done (status seen by polling).
    A new batch per repeat rather than a fresh output: the code location's output is fixed by
    its environment (MDS_OUT_URL), and a new batch is what a user launches a run for. Before
    each launch it waits a random 0-5 s (untimed, seeded), as a user's click falls anywhere in
    the daemon's dequeue interval: launched back to back, runs would lock onto its phase.

The DAGSTER_HOME of `dagster dev` gets the dagster.yaml that `mds-assets` writes
(mds_assets.build.instance_config), or `--instance-config FILE`. For each UI run it prints the
breakdown from the run's event log: launch -> queued (the mutation), queued -> starting (the
daemon's run queue), starting -> run start (the run worker `dagster api execute_run` started,
Dagster and the code location imported), the steps, the run's end, and end -> seen.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests.commands import MDS_ASSETS, build_arguments
from tests.mds_assets.conftest import record, write_batch
from tests.system.dagster_server import REPO, DagsterDev

FIELDS = "uid,text,blob:base64,n:int64,meta:json"
TARGET = 1.5
REPOSITORY = {"repositoryLocationName": "mds_assets", "repositoryName": "__repository__"}

SENSORS = """query($repo: RepositorySelector!) { sensorsOrError(repositorySelector: $repo) {
  ... on Sensors { results { name sensorState { id status } } } } }"""
STOP_SENSOR = """mutation($id: String!) { stopSensor(id: $id) { __typename } }"""
ADD_PARTITION = """mutation($key: String!, $repo: RepositorySelector!) { addDynamicPartition(
  partitionsDefName: "raw_batches", partitionKey: $key, repositorySelector: $repo) { __typename } }"""
LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
STATUS = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""
RUN = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status creationTime startTime endTime } }
  logsForRun(runId: $id, limit: 1000) { ... on EventConnection { events { __typename
  ... on MessageEvent { timestamp } } } } }"""
PHASES = [  # (label, event that ends it)
    ("launch->queued", "RunEnqueuedEvent"),
    ("queue wait", "RunStartingEvent"),
    ("worker start-up", "RunStartEvent"),
    ("steps", "last step end"),
    ("run end", "RunSuccessEvent"),
]
STEP_END = ("ExecutionStepSuccessEvent", "ExecutionStepFailureEvent")


def baseline(raw: Path, out: Path, home: Path) -> float:
    command = [*MDS_ASSETS, *build_arguments(raw, out, FIELDS), "--quiet"]
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_DISABLE_TELEMETRY": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"mds-assets build failed: {done.stdout}{done.stderr}")
    return seconds


def stop_sensors(server: DagsterDev) -> None:
    for sensor in server.graphql(SENSORS, {"repo": REPOSITORY})["sensorsOrError"]["results"]:
        if sensor["sensorState"]["status"] == "RUNNING":
            server.graphql(STOP_SENSOR, {"id": sensor["sensorState"]["id"]})


def ui_run(server: DagsterDev, raw: Path, key: str, records: list[dict], timeout: float = 300) -> dict:
    write_batch(raw, f"{key}.jsonl", records)
    server.graphql(ADD_PARTITION, {"key": key, "repo": REPOSITORY})
    params = {
        "selector": {**REPOSITORY, "jobName": "build_partition"},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": key}]},
    }
    start_wall, start = time.time(), time.perf_counter()
    answer = server.graphql(LAUNCH, {"params": params})["launchRun"]
    if answer["__typename"] != "LaunchRunSuccess":
        raise SystemExit(f"launch failed: {answer}")
    run_id = answer["run"]["runId"]
    deadline = start + timeout
    while True:
        status = server.graphql(STATUS, {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            seconds = time.perf_counter() - start
            break
        if time.perf_counter() > deadline:
            raise SystemExit(f"run {run_id} not done within {timeout} s")
        time.sleep(0.05)
    if status != "SUCCESS":
        raise SystemExit(f"run {run_id} ended {status}: see the dagster dev log")
    data = server.graphql(RUN, {"id": run_id})
    run, events = data["runOrError"], data["logsForRun"]["events"]
    times: dict[str, float] = {}
    for event in events:
        stamp = float(event["timestamp"]) / 1000
        times.setdefault(event["__typename"], stamp)
        if event["__typename"] in STEP_END:
            times["last step end"] = stamp
    phases, previous = {}, start_wall
    for label, name in PHASES:
        if name in times:
            phases[label] = times[name] - previous
            previous = times[name]
    phases["end->seen"] = start_wall + seconds - previous
    steps = sum(1 for event in events if event["__typename"] == "ExecutionStepStartEvent")
    return {"seconds": seconds, "run": run["endTime"] - run["startTime"], "phases": phases, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--instance-config", type=Path, help="dagster.yaml for dagster dev (default: mds-assets')")
    parser.add_argument("--pause", type=float, default=5.0, help="random wait before each launch, 0 to this (s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (dagster dev's log)")
    args = parser.parse_args()
    instance_config = args.instance_config.read_text() if args.instance_config else None  # None: mds-assets'
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    root = Path(tempfile.mkdtemp(prefix="mds-ui-bench-"))
    records = [record(0, number) for number in range(args.records)]
    write_batch(root / "base-raw", "batch-0.jsonl", records)
    builds: list[float] = []
    runs: list[dict] = []

    def baselines() -> None:
        for _ in range(args.repeats):
            out = root / "base-out"  # one dataset per instance: the same output, emptied after each build
            builds.append(baseline(root / "base-raw", out, root / "base-home"))
            shutil.rmtree(out)

    env = {
        "MDS_RAW_URL": str(root / "raw"),
        "MDS_OUT_URL": str(root / "out"),
        "MDS_FIELDS": FIELDS,
    }
    server = DagsterDev(root / "home", env, root / "dagster-dev.log", instance_config)
    try:
        (root / "raw").mkdir()
        baselines()
        started = time.perf_counter()
        server.start()
        print(f"dagster dev up in {time.perf_counter() - started:.1f} s")
        stop_sensors(server)
        pauses = random.Random(0)
        for repeat in range(args.repeats):
            time.sleep(pauses.uniform(0, args.pause))
            runs.append(ui_run(server, root / "raw", f"batch-{repeat + 1}", records))
            run = runs[-1]
            breakdown = ", ".join(f"{label} {seconds:.2f}" for label, seconds in run["phases"].items())
            print(f"  UI run {repeat + 1}: {run['seconds']:.2f} s ({breakdown}; {run['steps']} steps)")
    finally:
        server.stop()
    try:
        baselines()
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"  mds-assets build: {', '.join(f'{s:.2f}' for s in builds)} s")
    best_ui, best_build = min(run["seconds"] for run in runs), min(builds)
    median_ui, median_build = statistics.median(r["seconds"] for r in runs), statistics.median(builds)
    print(f"\n{args.records} records, one batch, best of {args.repeats}")
    print("                                            best   median")
    print(f"  mds-assets build (fresh process)        {best_build:6.2f} s {median_build:6.2f} s")
    print(f"  UI launch -> done (dagster dev, GraphQL) {best_ui:6.2f} s {median_ui:6.2f} s")
    print(f"    of which the run itself (start->end) {min(r['run'] for r in runs):6.2f} s")
    ratios = f"best {best_ui / best_build:.2f}x, median {median_ui / median_build:.2f}x"
    print(f"  ratio UI / build: {ratios} (target <= {TARGET}x)")


if __name__ == "__main__":
    main()
