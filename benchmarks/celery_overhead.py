"""The Celery path against in-process runs on the same data, on loopback.

    python -m benchmarks.celery_overhead [--batches 8] [--records 2000]

Starts PostgreSQL and Redis on 127.0.0.1 (Debian's packages; as root, like the tests) and up
to two Celery workers (each in its own mount namespace, as in tests/system/), generates
`--batches` JSONL batches, and times `mds-assets build` into a fresh output each time:

  * in_process, --workers 1: the default, one run at a time, SQLite instance;
  * celery, 1 worker, --workers 1: the same runs, every step a Celery task (per-partition cost);
  * celery, 1 worker and 2 workers, --workers 4: 4 runs orchestrated at once.

It prints seconds, seconds per partition, and the published bytes are checked identical.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.commands import MDS_ASSETS, build_arguments
from tests.mds_assets.conftest import record, write_batch
from tests.system.cluster import REPO, CeleryWorker, Postgres, Redis, instance_yaml

FIELDS = "uid,text,blob:base64,n:int64,meta:json"


def build(raw: Path, out: Path, home: Path, env: dict[str, str], workers: int) -> float:
    command = [*MDS_ASSETS, *build_arguments(raw, out, FIELDS), "--workers", str(workers), "--quiet"]
    start = time.perf_counter()
    done = subprocess.run(
        command,
        env={**os.environ, **env, "DAGSTER_HOME": str(home)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"build failed: {done.stdout}{done.stderr}")
    return seconds


def published(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--records", type=int, default=2000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mds-celery-bench-"))
    raw = root / "raw"
    for batch in range(args.batches):
        write_batch(raw, f"batch-{batch}.jsonl", [record(batch, n) for n in range(args.records)])
    postgres, redis = Postgres(), Redis()
    workers: list[CeleryWorker] = []
    results = []
    try:
        postgres.start()
        redis.start()
        local_home = root / "local-home"
        seconds = build(raw, root / "out-local", local_home, {"MDS_EXECUTOR": "in_process"}, workers=1)
        results.append(("in_process, 1 run at a time", seconds))
        reference = published(root / "out-local")
        for count, orchestrators in ((1, 1), (1, 4), (2, 4)):
            home = root / f"home-{count}-{orchestrators}"
            home.mkdir()
            database = postgres.create_database(f"bench_{count}_{orchestrators}")
            (home / "dagster.yaml").write_text(instance_yaml(database))
            env = {"MDS_EXECUTOR": "celery", "MDS_CELERY_BROKER": redis.url, "DAGSTER_DISABLE_TELEMETRY": "1"}
            workers = [CeleryWorker(f"bench-{n}", home, redis.url, env, root, 600) for n in range(count)]
            for worker in workers:
                worker.launch()
            for worker in workers:
                worker.wait_ready()
            out = root / f"out-{count}-{orchestrators}"
            seconds = build(raw, out, home, env, workers=orchestrators)
            assert published(out) == reference, "celery build differs from the in-process one"
            results.append((f"celery, {count} worker(s), {orchestrators} run(s) at a time", seconds))
            for worker in workers:
                worker.stop()
            workers = []
    finally:
        for worker in workers:
            worker.stop()
        redis.stop()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"batches": args.batches, "records_per_batch": args.records, "cpus": os.cpu_count()}))
    for name, seconds in results:
        print(f"{name:45s} {seconds:7.1f} s  {seconds / args.batches:5.2f} s/partition")


if __name__ == "__main__":
    main()
