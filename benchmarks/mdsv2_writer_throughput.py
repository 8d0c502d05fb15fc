"""`writer.MDSWriter` against mosaicml-streaming 0.13.0's `MDSWriter`, side by side in one run.

    python benchmarks/mdsv2_writer_throughput.py [--scale 1.0] [--repeats 3] [--only small,large,zstd]

Both write the same samples (columns `uid: bytes`, `data: bytes`; S's default size limit of
64 MiB) through their public `write(sample)` and `finish()` (a `with` block), to a temporary
directory on the local disk; runs are interleaved so a noisy moment hits both alike, and each
figure is the best of `--repeats`. After the first run of each workload every file of the two
outputs is compared: they must be byte for byte the same (zstd too: both use the `zstd` package).
S is loaded as the tests load it (tests/streaming_reference.py: without torchvision).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from tests.streaming_reference import VERSION, mds_writer_module  # noqa: E402
from writer import MDSWriter  # noqa: E402

COLUMNS = {"uid": "bytes", "data": "bytes"}
WORKLOADS = {  # name: (samples, bytes per sample, compressible, compression)
    "small": (200_000, 100, False, None),
    "large": (20_000, 10_000, False, None),
    "zstd": (20_000, 10_000, True, "zstd"),
}


def samples(count: int, sample_bytes: int, compressible: bool) -> list[dict[str, bytes]]:
    """Built before timing, so only writing is measured: a 10-byte uid and the rest of the bytes."""
    payload_bytes = sample_bytes - 10
    if compressible:
        words = b"the quick brown fox jumps over the lazy dog 0123456789 "
        payloads = [(words * (payload_bytes // len(words) + 1))[: payload_bytes - 4] + os.urandom(4) for _ in range(64)]
    else:
        payloads = [os.urandom(payload_bytes) for _ in range(64)]
    return [{"uid": b"%010d" % number, "data": payloads[number % 64]} for number in range(count)]


def run(writer_class: Callable[..., object], data: list[dict[str, bytes]], out: str, compression: str | None) -> float:
    start = time.perf_counter()
    with writer_class(out=out, columns=COLUMNS, compression=compression) as writer:  # type: ignore[attr-defined]
        write = writer.write
        for sample in data:
            write(sample)
    return time.perf_counter() - start


def same_files(ours: Path, theirs: Path) -> bool:
    names = sorted(path.name for path in theirs.iterdir())
    return sorted(path.name for path in ours.iterdir()) == names and all(
        (ours / name).read_bytes() == (theirs / name).read_bytes() for name in names
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply sample counts (default 1.0)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per writer; the best counts (default 3)")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="workloads to run (default: all)")
    args = parser.parse_args()
    theirs_class = mds_writer_module().MDSWriter
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}; mosaicml-streaming {VERSION}; best of {args.repeats}"
    )
    print(f"\n| workload | writer.MDSWriter | mosaicml-streaming {VERSION} | ratio | output |")
    print("| --- | --- | --- | --- | --- |")
    root = Path(tempfile.mkdtemp(prefix="mdsv2-bench-"))
    try:
        for name in args.only.split(","):
            count, size, compressible, compression = WORKLOADS[name]
            count = int(count * args.scale)
            data = samples(count, size, compressible)
            best = {"ours": float("inf"), "theirs": float("inf")}
            identical = True
            for repeat in range(args.repeats):
                for label, writer_class in (("theirs", theirs_class), ("ours", MDSWriter)):
                    out = root / f"{label}-{repeat}"
                    best[label] = min(best[label], run(writer_class, data, str(out), compression))
                if repeat == 0:
                    identical = same_files(root / "ours-0", root / "theirs-0")
                for label in best:
                    shutil.rmtree(root / f"{label}-{repeat}")
            total = count * size
            rate = {
                label: f"{count / seconds:,.0f} samples/s, {total / seconds / 1e6:,.0f} MB/s ({seconds:.2f} s)"
                for label, seconds in best.items()
            }
            label = f"{count / 1000:g}k × {f'{size // 1000} KB' if size >= 1000 else f'{size} B'}"
            print(
                f"| {label}{', ' + compression if compression else ''} | {rate['ours']} | {rate['theirs']} | "
                f"**{best['theirs'] / best['ours']:.2f}×** | {'byte-identical' if identical else 'DIFFERENT'} |"
            )
            assert identical, f"{name}: the two outputs differ"
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
