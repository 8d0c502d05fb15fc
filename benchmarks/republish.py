"""Publishing an output of many partitions and tens of thousands of small shards, and republishing it.

    python -m benchmarks.republish [--partitions 3750] [--shards-per-partition 10]
                                   [--tree /path/to/another/checkout ...] [--profile DIR]

Builds, per source tree (this checkout, then each `--tree`, in that order: e.g. a checkout of
an earlier commit to compare with), an output of `--partitions` composer-format partitions of
`--shards-per-partition` shards of ~1 KB each, written with the tree's own
`StreamingDatasetWriter` straight into `<out>/partitions/<key>/` with a stamp (Dagster plays no
part in the setup, which takes seconds). Then, each in a fresh process running the tree's own
code with a Dagster instance of its own (persisted between the steps, as the UI's is), it times
the `publish_index` job (`mds_index` and its checks `index_consistency`, `samples_decode`),
each step for every tree in turn:

  (a) publish: the first publish of the output (every shard placed and read back once);
  (b) no-op: the same job again, nothing changed;
  (c) one changed: one partition rebuilt (staged and promoted by `writer.merge`, as a build
      does), then the job.

The baselines, measured in the same process just before each job, in plain Python (the same
code for every tree): `list+stat`, a walk of the output listing and stat-ing every file (the
least any publish that looks at every shard costs), and `read`, every partition's index and
manifest read and the manifest parsed (what any publish must read). Each job's time is printed
as a ratio to both, with the time of each step (the asset and each check) from the run's
events; with `--tree`, each step's time against this checkout's.
`--profile DIR` writes a cProfile of each job to DIR/<tree>-<step>.prof.
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
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIELDS = ["uid", "text"]
SAMPLES_PER_SHARD = 8
TEXT_BYTES = 100  # 8 samples of ~110 bytes: shards of ~1 KB
SHARD_SIZE_LIMIT = SAMPLES_PER_SHARD * (TEXT_BYTES + 32) + 16  # 8 samples and the shard header
STEPS = ("publish", "no-op", "one changed")


def key_of(number: int) -> str:
    return f"drop-{number:06d}"


def _samples(key: str, shards: int, generation: int) -> list[dict[str, bytes]]:
    count = shards * SAMPLES_PER_SHARD
    return [
        {"uid": f"{key}-{n}".encode(), "text": f"{generation} {key} {n} ".encode().ljust(TEXT_BYTES, b"x")}
        for n in range(count)
    ]


def _stamp(key: str, generation: int) -> bytes:
    stamp = {
        "batches": [[f"{key}.jsonl", f"{TEXT_BYTES}|{generation}|"]],
        "fields": FIELDS,
        "shard_size_limit": SHARD_SIZE_LIMIT,
        "compression": None,
        "built_at": time.time(),
    }
    return json.dumps(stamp, indent=1, sort_keys=True).encode()


def _write_partition(url: str, key: str, shards: int, generation: int) -> None:
    from writer import StreamingDatasetWriter

    encodings = {name: "str" for name in FIELDS}
    with StreamingDatasetWriter(
        url, FIELDS, SHARD_SIZE_LIMIT, None, overwrite=True, workers=1, column_encodings=encodings
    ) as writer:
        writer.write_samples(_samples(key, shards, generation), use_tqdm=False)


def generate(root: str, partitions: int, shards: int) -> dict[str, float]:
    """The raw folder (one small file per partition) and the partitions, stamped as a build stamps them."""
    start = time.perf_counter()
    raw, out = Path(root) / "raw", Path(root) / "out"
    raw.mkdir(parents=True)
    for number in range(partitions):
        key = key_of(number)
        (raw / f"{key}.jsonl").write_text('{"uid": "x", "text": "y"}\n')
        folder = out / "partitions" / key
        _write_partition(str(folder), key, shards, 0)
        (folder / "mds_source.json").write_bytes(_stamp(key, 0))
    return {"seconds": time.perf_counter() - start}


def change_one(root: str, number: int, shards: int) -> dict[str, float]:
    """Rebuild one partition as a build does: written complete in staging, promoted by a merge."""
    from writer.merge import merge_datasets

    key = key_of(number)
    out = Path(root) / "out"
    staging = out / "partitions" / ".staging" / key
    _write_partition(str(staging), key, shards, 1)
    merge_datasets([str(staging)], str(out / "partitions" / key), None, sidecars={"mds_source.json": _stamp(key, 1)})
    shutil.rmtree(staging)
    return {}


def list_and_stat(out: str) -> int:
    files = 0
    for folder, _dirs, names in os.walk(out):
        for name in names:
            os.stat(os.path.join(folder, name))
            files += 1
    return files


def read_sources(out: str) -> int:
    """Every partition's index and manifest read, the manifest parsed: what any publish must read,
    in plain Python, the same for every tree measured."""
    shards = 0
    root = Path(out) / "partitions"
    for name in sorted(os.listdir(root)):
        if name.startswith("."):
            continue
        (root / name / "index.mds").read_bytes()
        shards += len(json.loads((root / name / "mds_manifest.json").read_bytes())["shards"])
    return shards


def _timed(action: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = action()
    return time.perf_counter() - start, value


def _step_seconds(instance: Any, run_id: str) -> dict[str, float]:
    """Each step's time (start to end) from the run's event log."""
    starts: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in starts:
            seconds[event.step_key] = entry.timestamp - starts[event.step_key]
    return seconds


def publish(root: str, profile: str | None) -> dict[str, Any]:
    """One `publish_index` run in this process (the tree's own code), after both baselines."""
    from dagster import DagsterInstance

    from mds_assets.definitions import defs

    out = str(Path(root) / "out")
    stat_seconds, files = _timed(lambda: list_and_stat(out))
    read_seconds, placed = _timed(lambda: read_sources(out))
    job = defs.resolve_job_def("publish_index")
    with DagsterInstance.from_config(str(Path(root) / "home")) as instance:
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            seconds, result = _timed(lambda: profiler.runcall(job.execute_in_process, instance=instance))
            profiler.dump_stats(profile)
        else:
            seconds, result = _timed(lambda: job.execute_in_process(instance=instance))
        metadata = result.asset_materializations_for_node("mds_index")[0].metadata
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        audited = {
            name: value.value
            for e in result.get_asset_check_evaluations()
            for name, value in e.metadata.items()
            if name in ("shards_checksummed", "bytes_checksummed")
        }
        steps = _step_seconds(instance, result.run_id)
    return {
        "files": files,
        "shards": placed,
        "list_stat": stat_seconds,
        "read": read_seconds,
        "job": seconds,
        "steps": steps,
        "changed": metadata["changed"].value,
        "checks": checks,
        **audited,
    }


def _in_tree(tree: Path, root: Path, call: str) -> dict[str, Any]:
    """`call` (a function of this module, as Python) in a fresh process running `tree`'s code."""
    env = {
        **os.environ,
        "PYTHONPATH": f"{tree}{os.pathsep}{REPO}",
        "DAGSTER_HOME": str(root / "home"),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "MDS_RAW_URL": str(root / "raw"),
        "MDS_OUT_URL": str(root / "out"),
        "MDS_FIELDS": ",".join(FIELDS),
        "MDS_SHARD_SIZE_LIMIT": str(SHARD_SIZE_LIMIT),
        "MDS_EXECUTOR": "in_process",
    }
    code = (
        "import json, importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('republish_benchmark', {str(Path(__file__))!r})\n"
        "bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)\n"
        f"print('RESULT ' + json.dumps(bench.{call}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, timeout=3600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{call} in {tree} failed:\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def run_trees(trees: list[tuple[Path, str]], args: argparse.Namespace) -> dict[str, dict[str, dict[str, Any]]]:
    """Each step for every tree in turn (not one tree after the other), so a change in the
    machine's load falls on every tree alike."""
    roots = {label: Path(tempfile.mkdtemp(prefix="mds-republish-", dir=args.dir)) for _tree, label in trees}
    results: dict[str, dict[str, dict[str, Any]]] = {label: {} for _tree, label in trees}
    try:
        for tree, label in trees:
            root = roots[label]
            (root / "home").mkdir()
            made = _in_tree(tree, root, f"generate({str(root)!r}, {args.partitions}, {args.shards_per_partition})")
            print(f"[{label}] generated in {made['seconds']:.1f} s", flush=True)
        for step in STEPS:
            for tree, label in trees:
                root = roots[label]
                if step == "one changed":
                    number, shards = args.partitions // 2, args.shards_per_partition
                    _in_tree(tree, root, f"change_one({str(root)!r}, {number}, {shards})")
                name = f"{label}-{step.replace(' ', '_')}.prof"
                profile = str(Path(args.profile) / name) if args.profile else None
                results[label][step] = _in_tree(tree, root, f"publish({str(root)!r}, {profile!r})")
                _print_row(label, step, results[label][step])
        return results
    finally:
        for root in roots.values():
            shutil.rmtree(root, ignore_errors=True)


def _print_row(label: str, step: str, row: dict[str, Any]) -> None:
    steps = ", ".join(f"{name.split('.')[-1]} {seconds:.1f}" for name, seconds in sorted(row["steps"].items()))
    print(
        f"[{label}] {step:>11}: job {row['job']:6.1f} s = {row['job'] / row['list_stat']:5.0f}x list+stat "
        f"({row['list_stat']:.2f} s, {row['files']} files), {row['job'] / row['read']:5.1f}x read "
        f"({row['read']:.2f} s, {row['shards']} shards); steps s: {steps}; changed {row['changed']}; "
        f"checksummed {row.get('shards_checksummed', '-')} shards; checks {row['checks']}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, default=3750)
    parser.add_argument("--shards-per-partition", type=int, default=10)
    parser.add_argument("--tree", action="append", default=[], help="another checkout to measure on the same data")
    parser.add_argument("--skip-this", action="store_true", help="measure only the --tree checkouts")
    parser.add_argument("--profile", help="a folder for a cProfile of each job")
    parser.add_argument("--dir", default=None, help="where the output is generated (default: the system's temp)")
    args = parser.parse_args()
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    trees = [] if args.skip_this else [(REPO, "this")]
    trees += [(Path(tree).resolve(), Path(tree).name) for tree in args.tree]
    results = run_trees(trees, args)
    if len(trees) > 1:
        first = trees[0][1]
        for step in STEPS:
            ratios = ", ".join(
                f"{label} {results[label][step]['job'] / results[first][step]['job']:.2f}x"
                for _tree, label in trees[1:]
            )
            print(f"{step:>11}: against {first}: {ratios}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
