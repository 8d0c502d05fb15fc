"""Writer throughput against baselines measured in the same run; prints ratios.

    python benchmarks/writer_throughput.py [--scale 1.0]

Baselines: an original-style writer (per-sample numpy arrays, serial gzip) and a bare
write of the same encoded bytes in shard-sized files (the I/O floor). Writes to a temporary
directory on the local disk.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from typing import Callable

from original_writer import OriginalStyleWriter

from writer import StreamingDatasetWriter
from writer.format import record_header

SHARD_SIZE_LIMIT = 1 << 24


def samples(count: int, payload_bytes: int, compressible: bool) -> list[dict[str, bytes]]:
    """Fixed samples built before timing, so only writing is measured."""
    if compressible:
        words = b"the quick brown fox jumps over the lazy dog 0123456789 "
        payloads = [(words * (payload_bytes // len(words) + 1))[:payload_bytes - 4] + os.urandom(4)
                    for _ in range(64)]
    else:
        payloads = [os.urandom(payload_bytes) for _ in range(64)]
    return [{"uid": b"%010d" % number, "data": payloads[number % 64]} for number in range(count)]


def bare_write(directory: str, data: list[dict[str, bytes]]) -> None:
    """The same encoded bytes, shard-sized, straight to files: the I/O floor."""
    header = record_header(2)
    encoded = b"".join(header.pack(len(s["uid"]), len(s["data"])) + s["uid"] + s["data"] for s in data)
    start = time.perf_counter()
    for number, offset in enumerate(range(0, len(encoded), SHARD_SIZE_LIMIT)):
        with open(os.path.join(directory, f"{number:06d}.mds"), "wb") as out:
            out.write(encoded[offset : offset + SHARD_SIZE_LIMIT])
    return time.perf_counter() - start


def timed(make_writer: Callable[[str], object], data: list[dict[str, bytes]], root: str, label: str,
          repeats: int = 3) -> float:
    """Best of `repeats` runs, in seconds."""
    best = float("inf")
    for repeat in range(repeats):
        directory = os.path.join(root, f"{label}-{repeat}")
        start = time.perf_counter()
        writer = make_writer(directory)
        for sample in data:
            writer.write_sample(sample)
        writer.finish()
        best = min(best, time.perf_counter() - start)
        shutil.rmtree(directory)
    return best


def best_bare(data: list[dict[str, bytes]], root: str, repeats: int = 3) -> float:
    best = float("inf")
    for repeat in range(repeats):
        directory = os.path.join(root, f"bare-{repeat}")
        os.makedirs(directory)
        best = min(best, bare_write(directory, data))
        shutil.rmtree(directory)
    return best


def scenario(name: str, data: list[dict[str, bytes]], compression: str | None, root: str,
             with_bare: bool) -> None:
    total_bytes = sum(16 + len(s["uid"]) + len(s["data"]) for s in data)
    ours = timed(lambda d: StreamingDatasetWriter(d, ["uid", "data"], SHARD_SIZE_LIMIT, compression), data, root, "ours")
    original = timed(lambda d: OriginalStyleWriter(d, ["uid", "data"], SHARD_SIZE_LIMIT, compression), data, root,
                     "original")
    print(f"\n{name}: {len(data):,} samples, {total_bytes / 1e6:,.0f} MB, compression={compression}")
    for label, seconds in (("mds-assets writer", ours), ("original-style writer", original)):
        print(f"  {label:<24}{len(data) / seconds / 1e6:8.3f} M samples/s {total_bytes / seconds / 1e6:10.1f} MB/s")
    print(f"  ratio ours / original-style:  {original / ours:5.2f}x")
    if with_bare:
        bare = best_bare(data, root)
        print(f"  {'bare write':<24}{'':20}{total_bytes / bare / 1e6:10.1f} MB/s")
        print(f"  ratio ours / bare write:      {bare / ours:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply sample counts (default 1.0)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    root = tempfile.mkdtemp(prefix="mds-bench-")
    try:
        scenario("small samples (100 B)", samples(int(1_000_000 * args.scale), 74, False), None, root, False)
        scenario("large samples (10 KB)", samples(int(50_000 * args.scale), 10_000 - 26, False), None, root, True)
        scenario("gz, compressible 10 KB", samples(int(20_000 * args.scale), 10_000 - 26, True), "gz", root, False)
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
