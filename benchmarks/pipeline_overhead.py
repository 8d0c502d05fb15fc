"""The Dagster pipeline end to end against the bare writer on the same raw data.

    python benchmarks/pipeline_overhead.py [--sizes-mb 150] [--batches 8]

For each size it generates JSONL batches of ~10 KB records (uid, caption, base64 payload),
then times, each in a fresh process:
  * bare writer: read every batch, encode the selection, write one dataset with
    StreamingDatasetWriter (one process, no Dagster);
  * pipeline: `mds-assets build` (Dagster runs, a partition per batch, 2 workers, then the
    index and its checks) into a fresh output and a fresh DAGSTER_HOME.
It prints time, throughput, peak RSS of the main process and of the largest worker, and the
pipeline / bare ratio. Run it with several sizes to see that peak memory does not grow.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FIELDS = ["uid", "caption", "payload:base64"]
RECORD_PAYLOAD = 7_300  # bytes before base64: ~10 KB per JSON line

BARE = """
import json, resource, sys, time
from mds_assets.core.raw_sources import list_batches, read_records
from mds_assets.core.selection import RecordEncoder, parse_fields
from writer import StreamingDatasetWriter
raw, out = sys.argv[1], sys.argv[2]
selections = parse_fields(sys.argv[3])
start = time.perf_counter()
with StreamingDatasetWriter(out, [s.name for s in selections]) as writer:
    for batch in list_batches(raw):
        encoder = RecordEncoder(selections, batch.name)
        writer.write_samples((encoder.encode(line, record) for line, record in read_records(batch)), use_tqdm=False)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "samples": writer.total_samples, "bytes": sum(writer.bytes_per_shard),
                  "peak_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "peak_children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""

PIPELINE = """
import json, resource, sys, time
from mds_assets.build import build
from mds_assets.resources import MDSSettings
raw, out = sys.argv[1], sys.argv[2]
settings = MDSSettings(raw_url=raw, out_url=out, fields=sys.argv[3].split(","))
start = time.perf_counter()
report = build(settings, workers=2, progress=False)
seconds = time.perf_counter() - start
assert report.ok, report.failed
print(json.dumps({"seconds": seconds, "samples": report.published["dagster/row_count"].value,
                  "bytes": report.published["bytes"].value,
                  "peak_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "peak_children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def generate(raw: Path, size_mb: int, batches: int) -> int:
    raw.mkdir(parents=True)
    line_bytes = len(base64.b64encode(bytes(RECORD_PAYLOAD))) + 80
    per_batch = max(1, size_mb * 1_000_000 // line_bytes // batches)
    payloads = [base64.b64encode(os.urandom(RECORD_PAYLOAD)).decode() for _ in range(32)]
    for batch in range(batches):
        with (raw / f"batch-{batch:03d}.jsonl").open("w") as out:
            for number in range(per_batch):
                out.write(
                    json.dumps(
                        {
                            "uid": f"{batch}-{number}",
                            "caption": f"record {number} of batch {batch}",
                            "payload": payloads[number % 32],
                        }
                    )
                    + "\n"
                )
    return per_batch * batches


def run(script: str, raw: Path, out: Path, home: Path) -> dict:
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_DISABLE_TELEMETRY": "1"}
    home.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", script, str(raw), str(out), ",".join(FIELDS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
    )
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", default="150,1400", help="comma-separated raw sizes in MB (default 150,1400)")
    parser.add_argument("--batches", type=int, default=8)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    for size_mb in (int(size) for size in args.sizes_mb.split(",")):
        root = Path(tempfile.mkdtemp(prefix="mds-pipeline-"))
        try:
            records = generate(root / "raw", size_mb, args.batches)
            bare = run(BARE, root / "raw", root / "bare", root / "home-bare")
            pipeline = run(PIPELINE, root / "raw", root / "out", root / "home-pipeline")
        finally:
            shutil.rmtree(root)
        assert bare["samples"] == pipeline["samples"] == records
        print(f"\n{size_mb} MB raw, {records:,} records, {args.batches} batches, {bare['bytes'] / 1e6:,.0f} MB of .mds")
        for name, result in (("bare writer", bare), ("pipeline (build)", pipeline)):
            print(
                f"  {name:<18}{result['seconds']:8.2f} s {result['bytes'] / result['seconds'] / 1e6:9.1f} MB/s   "
                f"peak RSS main {result['peak_self'] / 1024:6.0f} MB, largest worker "
                f"{result['peak_children'] / 1024:6.0f} MB"
            )
        print(f"  ratio pipeline / bare writer: {pipeline['seconds'] / bare['seconds']:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
