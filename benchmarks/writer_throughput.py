"""Our writer against Composer 0.10.1's own writer, measured in the same run; prints ratios.

    python benchmarks/writer_throughput.py [--scale 1.0] [--repeats 5]

Baselines, run in this same process on the same samples, interleaved with ours:
* Composer's `StreamingDatasetWriter` (mosaicml 0.10.1, `composer/datasets/streaming/writer.py`
  loaded from its PyPI wheel by `tests/writer/composer_reference.py`; fetched once into
  `.cache/reference/`). When that cannot be loaded (no network, no numpy) the original-style
  re-implementation in `benchmarks/original_writer.py` stands in, and the output says so.
* a bare write of the same encoded bytes in shard-sized files (the I/O floor).

Both writers go through their public `write_samples(samples, use_tqdm=False)` and `finish()`.
Each figure is the best of `--repeats` runs (the machine may be shared). Writes to a temporary
directory on the local disk.
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from writer import StreamingDatasetWriter  # noqa: E402
from writer.compression import CRC32_IMPLEMENTATION, DEFLATE_IMPLEMENTATION, parse_compression  # noqa: E402
from writer.format import record_header  # noqa: E402

SHARD_SIZE_LIMIT = 1 << 24
FIELDS = ["uid", "data"]


def baseline() -> tuple[type, str]:
    """Composer's writer class and its label, or the original-style stand-in when it cannot load."""
    try:
        from tests.writer.composer_reference import WHEEL_VERSION, composer_writer

        return composer_writer().StreamingDatasetWriter, f"Composer {WHEEL_VERSION}"
    except Exception as error:  # any failure: say so and fall back
        from original_writer import OriginalStyleWriter

        print(
            f"NOTE: Composer's writer could not be loaded ({type(error).__name__}: {error});\n"
            "      the baseline is benchmarks/original_writer.py, an original-style re-implementation"
        )
        return OriginalStyleWriter, "original-style"


def samples(count: int, sample_bytes: int, compressible: bool) -> list[dict[str, bytes]]:
    """Fixed samples built before timing, so only writing is measured. Each record (16 B header,
    10 B uid, data) is exactly `sample_bytes` long."""
    payload_bytes = sample_bytes - 26
    if compressible:
        words = b"the quick brown fox jumps over the lazy dog 0123456789 "
        payloads = [(words * (payload_bytes // len(words) + 1))[: payload_bytes - 4] + os.urandom(4) for _ in range(64)]
    else:
        payloads = [os.urandom(payload_bytes) for _ in range(64)]
    return [{"uid": b"%010d" % number, "data": payloads[number % 64]} for number in range(count)]


def run_writer(make_writer: Callable[[str], object], data: list[dict[str, bytes]], directory: str) -> float:
    start = time.perf_counter()
    writer = make_writer(directory)
    writer.write_samples(data, use_tqdm=False)
    writer.finish()
    return time.perf_counter() - start


def run_bare(data: list[dict[str, bytes]], directory: str) -> float:
    """The same encoded bytes, shard-sized, straight to files: the I/O floor."""
    header = record_header(len(FIELDS))
    encoded = b"".join(header.pack(len(s["uid"]), len(s["data"])) + s["uid"] + s["data"] for s in data)
    os.makedirs(directory)
    start = time.perf_counter()
    for number, offset in enumerate(range(0, len(encoded), SHARD_SIZE_LIMIT)):
        with open(os.path.join(directory, f"{number:06d}.mds"), "wb") as out:
            out.write(encoded[offset : offset + SHARD_SIZE_LIMIT])
    return time.perf_counter() - start


def stored_bytes(directory: str) -> int:
    return sum(path.stat().st_size for path in Path(directory).glob("0*.mds*"))


def same_content(ours: str, theirs: str) -> bool:
    """Shards hold the same bytes (decompressed); shard counts may differ by the baseline's rotation rule."""

    def content(directory: str) -> bytes:
        paths = sorted(Path(directory).glob("0*.mds*"))
        return b"".join(gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes() for p in paths)

    return content(ours) == content(theirs)


def scenario(
    name: str,
    data: list[dict[str, bytes]],
    compression: str | None,
    root: str,
    repeats: int,
    baseline_class: type,
    with_bare: bool,
) -> dict[str, object]:
    total_bytes = sum(16 + len(s["uid"]) + len(s["data"]) for s in data)
    runners: dict[str, Callable[[str], float]] = {
        "ours": lambda d: run_writer(
            lambda x: StreamingDatasetWriter(x, FIELDS, SHARD_SIZE_LIMIT, compression), data, d
        ),
        "baseline": lambda d: run_writer(lambda x: baseline_class(x, FIELDS, SHARD_SIZE_LIMIT, compression), data, d),
    }
    if with_bare:
        runners["bare"] = lambda d: run_bare(data, d)
    best = dict.fromkeys(runners, float("inf"))
    sizes: dict[str, int] = {}
    for repeat in range(repeats):  # interleaved, so a noisy moment hits every contender alike
        for label, run in runners.items():
            directory = os.path.join(root, f"{label}-{repeat}")
            best[label] = min(best[label], run(directory))
            if repeat == 0 and label != "bare":
                sizes[label] = stored_bytes(directory)
                if label == "baseline":
                    assert same_content(os.path.join(root, "ours-0"), directory), f"{name}: outputs differ"
            if repeat or label == "bare":
                shutil.rmtree(directory)
    shutil.rmtree(os.path.join(root, "ours-0"))
    shutil.rmtree(os.path.join(root, "baseline-0"))
    return {
        "name": name,
        "count": len(data),
        "bytes": total_bytes,
        "best": best,
        "sizes": sizes,
        "compression": compression,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply sample counts (default 1.0)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per contender; the best counts (default 5)")
    parser.add_argument("--only", default="small,large,gz", help="workloads to run (default: small,large,gz)")
    args = parser.parse_args()
    chosen = set(args.only.split(","))
    baseline_class, baseline_label = baseline()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"deflate: {DEFLATE_IMPLEMENTATION}; CRC-32: {CRC32_IMPLEMENTATION}; "
        f"baseline: {baseline_label}; best of {args.repeats}"
    )
    root = tempfile.mkdtemp(prefix="mds-bench-")
    try:
        workloads = {  # name: (samples, sample bytes, compressible, compression, with a bare write)
            "small": (200_000, 100, False, None, True),
            "large": (20_000, 10_000, False, None, True),
            "gz": (20_000, 10_000, True, "gz", False),
        }
        results = []
        same_level: list[str] = []
        for name, (count, size, compressible, compression, with_bare) in workloads.items():
            if name in chosen:
                count = int(count * args.scale)
                label = f"{count / 1000:g}k × {f'{size // 1000} KB' if size >= 1000 else f'{size} B'}"
                data = samples(count, size, compressible)
                results.append(
                    scenario(
                        label + (f", {compression}" if compression else ""),
                        data,
                        compression,
                        root,
                        args.repeats,
                        baseline_class,
                        with_bare,
                    )
                )
                if compression:
                    same_level.append(f"{label}: {deflate_against_zlib(data, compression)}")
    finally:
        shutil.rmtree(root)
    print(f"\n| workload | mds-assets | {baseline_label} | ratio | bare write | ours / bare |")
    print("| --- | --- | --- | --- | --- | --- |")
    for result in results:
        best, count, total = result["best"], result["count"], result["bytes"]

        def rate(seconds: float, count: int = count, total: int = total) -> str:
            return f"{count / seconds / 1e6:.2f} M samples/s, {total / seconds / 1e6:,.0f} MB/s"

        bare = f"{rate(best['bare'])} | {best['bare'] / best['ours']:.2f}×" if "bare" in best else "| "
        print(
            f"| {result['name']} | {rate(best['ours'])} | {rate(best['baseline'])} | "
            f"**{best['baseline'] / best['ours']:.2f}×** | {bare} |"
        )
    for result in results:
        if result["compression"]:
            ours, theirs = result["sizes"]["ours"], result["sizes"]["baseline"]
            print(
                f"\n{result['name']}: stored {ours:,} B (ours) vs {theirs:,} B ({baseline_label}, zlib): "
                f"{(ours / theirs - 1) * 100:+.2f} %"
            )
    for line in same_level:
        print(line)


def deflate_against_zlib(data: list[dict[str, bytes]], compression: str) -> str:
    """Our gz against zlib's at the same level, on the same 16 MB pieces of sample bytes: size and time."""
    ours = parse_compression(compression)
    level = int(ours.name.partition(":")[2])
    joined = b"".join(value for sample in data for value in sample.values())
    pieces = [joined[start : start + (16 << 20)] for start in range(0, len(joined), 16 << 20)]
    sizes, seconds = [], []
    for compress in (ours.compress, lambda piece: gzip.compress(piece, compresslevel=level, mtime=0)):
        start = time.perf_counter()
        sizes.append(sum(len(compress(piece)) for piece in pieces))
        seconds.append(time.perf_counter() - start)
    return (
        f"{ours.name} ({DEFLATE_IMPLEMENTATION}) {sizes[0]:,} B in {seconds[0]:.2f} s, zlib at level {level} "
        f"{sizes[1]:,} B in {seconds[1]:.2f} s: size {(sizes[0] / sizes[1] - 1) * 100:+.2f} %, "
        f"{seconds[1] / seconds[0]:.1f}x as fast (one thread)"
    )


if __name__ == "__main__":
    main()
