"""Publishing the streaming format by reference: time and peak memory against the number of partitions.

Generates `<out>/partitions/<key>/` folders as `--format streaming` builds them — a generation
folder with shard files (4 KiB of zeros: a publish checks their sizes against the index, never
reads them) and the partition's `index.json` — on a RAM disk by default, then publishes them
with `publish_streaming`, the `mds_index` asset's own code, in a fresh process per size. The
published index is O(shards): an MDS v2 index holds no per-sample sizes, so 100 M samples cost
what 100 k would.

    python -m benchmarks.publish_by_reference                       # 1,000 / 3,000 / 10,000 partitions
    python -m benchmarks.publish_by_reference --partitions 10000 --samples 100000000

Prints, per size: partitions, shards, samples, publish seconds (wall and CPU), peak memory of
the publish (the process's resident high-water mark above what it held before), the index's
size, and the CPU time and memory per shard (flat when both grow linearly in shards).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mds_assets.core.generations import new_generation
from tests.v2_indexes import shard_entry

SHARD_BYTES = 4096  # what the index says and the listing shows; the shards' bytes are never read


def generate(out: Path, partitions: int, samples: int, shards_per_partition: int) -> list[str]:
    """Partition folders with sparse shard files and their `index.json` files; returns the keys."""
    per_shard = samples // (partitions * shards_per_partition)
    keys = [f"batch-{number:06d}" for number in range(partitions)]
    for key in keys:
        generation = new_generation()
        folder = out / "partitions" / key / generation
        folder.mkdir(parents=True)
        shards = []
        for number in range(shards_per_partition):
            name = f"shard.{number:05d}.mds"
            (folder / name).write_bytes(bytes(SHARD_BYTES))
            entry = shard_entry(name, per_shard, SHARD_BYTES, ("caption", "image", "uid"))
            shards.append(entry)
        (folder / "index.json").write_text(json.dumps({"shards": shards, "version": 2}, sort_keys=True))
        pointer = [
            {**s, "raw_data": {**s["raw_data"], "basename": f"{generation}/{s['raw_data']['basename']}"}}
            for s in shards
        ]
        (out / "partitions" / key / "index.json").write_text(
            json.dumps({"shards": pointer, "version": 2}, sort_keys=True)
        )
    return keys


def publish_in_this_process(out: str, partitions: int) -> dict[str, float]:
    """The measured part: one publish, timed, with the resident high-water mark before and after."""
    from mds_assets.core.streaming_publish import publish_streaming

    keys = [f"batch-{number:06d}" for number in range(partitions)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, cpu_start = time.perf_counter(), time.process_time()
    result = publish_streaming(out, keys, None)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_mib": (after - before) / 1024,
        "shards": len(result.index.shards),
        "samples": result.index.samples,
        "index_mib": os.path.getsize(os.path.join(out, "index.json")) / (1 << 20),
    }


def measure(partitions: int, samples: int, shards_per_partition: int, where: str | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="publish-by-reference-", dir=where) as folder:
        out = Path(folder) / "out"
        generate(out, partitions, samples, shards_per_partition)
        code = (
            "import json, sys; from benchmarks.publish_by_reference import publish_in_this_process; "
            f"print(json.dumps(publish_in_this_process({str(out)!r}, {partitions})))"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True)
        return {"partitions": partitions, **json.loads(done.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, nargs="*", default=[1000, 3000, 10000])
    parser.add_argument("--samples", type=int, default=100_000_000, help="samples at the largest size")
    parser.add_argument("--shards-per-partition", type=int, default=2)
    parser.add_argument(
        "--dir",
        default="/dev/shm" if os.path.isdir("/dev/shm") else None,
        help="where the partitions are generated (default: /dev/shm, a RAM disk: the publish's own "
        "cost, not the disk's, and tens of thousands of small files written in seconds)",
    )
    args = parser.parse_args()
    largest = max(args.partitions)
    print(
        f"{'partitions':>10} {'shards':>8} {'samples':>12} {'seconds':>8} {'cpu s':>7} {'peak MiB':>9} "
        f"{'index MiB':>9} {'cpu µs/shard':>12} {'KiB/shard':>9}"
    )
    for partitions in args.partitions:
        samples = args.samples * partitions // largest  # samples per partition the same at every size
        row = measure(partitions, samples, args.shards_per_partition, args.dir)
        print(
            f"{row['partitions']:>10,} {row['shards']:>8,.0f} {row['samples']:>12,.0f} {row['seconds']:>8.2f} "
            f"{row['cpu_seconds']:>7.2f} {row['peak_mib']:>9.1f} {row['index_mib']:>9.1f} "
            f"{row['cpu_seconds'] / row['shards'] * 1e6:>12.1f} {row['peak_mib'] * 1024 / row['shards']:>9.2f}"
        )


if __name__ == "__main__":
    main()
