"""`writer.MDSWriter` against mosaicml-streaming 0.13.0's `MDSWriter`, side by side in one run.

    python benchmarks/mdsv2_writer_throughput.py [--scale 1.0] [--repeats 3] [--only small,large,zstd,typed]

Both write the same samples (columns `uid: bytes`, `data: bytes`, or for `typed` `text: str`,
`n: int64`, `score: float32`; S's default size limit of 64 MiB) through their public
`write(sample)` and `finish()` (a `with` block), to a temporary directory on the local disk;
runs are interleaved so a noisy moment hits both alike, and each figure is the best of
`--repeats`. After the first run of each workload every file of the two outputs is compared:
byte for byte, and for zstd once inflated (the compressed bytes differ by library: zstandard,
streamed, here; the zstd package there), with the same index apart from `zip_data`.
S is loaded as the tests load it (tests/streaming_reference.py: without torchvision).
"""

from __future__ import annotations

import argparse
import json
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

import zstd  # noqa: E402 - S's own zstd package, to inflate both outputs the way S's reader does

from tests.streaming_reference import VERSION, mds_writer_module  # noqa: E402
from writer import MDSWriter  # noqa: E402

COLUMNS = {"uid": "bytes", "data": "bytes"}
TYPED_COLUMNS = {"text": "str", "n": "int64", "score": "float32"}
WORKLOADS = {  # name: (samples, bytes per sample, compressible, compression)
    "small": (200_000, 100, False, None),
    "large": (20_000, 10_000, False, None),
    "zstd": (20_000, 10_000, True, "zstd"),
    "typed": (200_000, 100, False, None),  # columns str, int64, float32: values encoded by the writers
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


def typed_samples(count: int) -> list[dict[str, object]]:
    """About 100 bytes each: an 88-character caption, an int, a float."""
    return [
        {"text": f"caption {number:08d} " * 5 + "x" * 3, "n": number, "score": number / 7} for number in range(count)
    ]


def run(
    writer_class: Callable[..., object],
    data: list[dict[str, object]],
    out: str,
    compression: str | None,
    columns: dict[str, str],
) -> float:
    start = time.perf_counter()
    with writer_class(out=out, columns=columns, compression=compression) as writer:  # type: ignore[attr-defined]
        write = writer.write
        for sample in data:
            write(sample)
    return time.perf_counter() - start


def same_output(ours: Path, theirs: Path) -> str:
    """ "byte-identical" when every file is; "same once inflated" when only compressed shards (and
    their index entries' `zip_data`) differ; "DIFFERENT" otherwise."""
    names = sorted(path.name for path in theirs.iterdir())
    if sorted(path.name for path in ours.iterdir()) != names:
        return "DIFFERENT"
    if all((ours / name).read_bytes() == (theirs / name).read_bytes() for name in names):
        return "byte-identical"

    def index_without_zip_data(folder: Path) -> list[dict[str, object]]:
        shards = json.loads((folder / "index.json").read_text())["shards"]
        return [{key: value for key, value in shard.items() if key != "zip_data"} for shard in shards]

    inflated = all(
        zstd.decompress((ours / name).read_bytes()) == zstd.decompress((theirs / name).read_bytes())
        for name in names
        if name.endswith(".zstd")
    )
    same_index = index_without_zip_data(ours) == index_without_zip_data(theirs)
    return "same once inflated" if inflated and same_index else "DIFFERENT"


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
            data: list[dict[str, object]]
            if name == "typed":
                data, columns = typed_samples(count), TYPED_COLUMNS
            else:
                data, columns = list(samples(count, size, compressible)), COLUMNS
            best = {"ours": float("inf"), "theirs": float("inf")}
            output = "not compared"
            for repeat in range(args.repeats):
                for label, writer_class in (("theirs", theirs_class), ("ours", MDSWriter)):
                    out = root / f"{label}-{repeat}"
                    best[label] = min(best[label], run(writer_class, data, str(out), compression, columns))
                if repeat == 0:
                    output = same_output(root / "ours-0", root / "theirs-0")
                for label in best:
                    shutil.rmtree(root / f"{label}-{repeat}")
            total = count * size
            rate = {
                label: f"{count / seconds:,.0f} samples/s, {total / seconds / 1e6:,.0f} MB/s ({seconds:.2f} s)"
                for label, seconds in best.items()
            }
            label = f"{count / 1000:g}k × {f'{size // 1000} KB' if size >= 1000 else f'{size} B'}"
            label += " (str, int64, float32)" if name == "typed" else ""
            print(
                f"| {label}{', ' + compression if compression else ''} | {rate['ours']} | {rate['theirs']} | "
                f"**{best['theirs'] / best['ours']:.2f}×** | {output} |"
            )
            assert output != "DIFFERENT", f"{name}: the two outputs differ"
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
