"""`mds-assets build` end to end against a hand-written loop over the same raw data.

    python benchmarks/pipeline_overhead.py [--batch-mb 2,80] [--batches 8] [--repeat 3]

For each batch size it generates `--batches` JSONL batches of ~13 KB records (uid, a caption of
3 to 40 words, a random base64 payload, and a `source` field that is not selected), then
times, each in a fresh process, alternating, best of `--repeat`:
  * hand loop (the baseline): one process reads every batch line by line, `json.loads`,
    `base64.b64decode`, and writes one dataset with our StreamingDatasetWriter — what a user
    would write without this project;
  * pipeline: `mds-assets build --workers 2` into a fresh output (Dagster runs, then the index
    and its checks), timed from process start to exit. One DAGSTER_HOME serves every repeat,
    as on a user's machine: the first build creates its SQLite instance (printed apart, as
    "first build"), the best of the others is the figure compared.
Peak memory is each process's own high-water mark (VmHWM, read from /proc while it runs: the
main process, and the largest of its workers); CPU is the user + system seconds of the process
and its workers. It also prints how many partitions (groups of raw files, MDS_PARTITION_BYTES)
the build made, and the load average before and after: on a shared machine the ratio follows the
load (the hand loop is one process, the build two workers), the CPU ratio much less. Targets:
pipeline / hand loop at most 10x on 8 x 2 MB (the floor there is Python and Dagster's import) and
at most 1.0x on 8 x 80 MB, with worker memory O(shard), not O(batch).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo's tests/ package
from tests.commands import MDS_ASSETS, build_arguments

FIELDS = "uid,caption,payload:base64"
RECORD_PAYLOAD = 9_750  # random bytes before base64: ~13 KB of base64 per record
CAPTION_WORDS = "a dog cat on the red blue sofa beside under river mountain photo of two three people city at night "
CAPTION_WORDS += "close-up painting café naïve 東京 street market old new small large garden with flowers in spring"
CAPTION_WORDS = CAPTION_WORDS.split()
TARGETS = {2: 10.0, 80: 1.0}  # batch MB -> the bound on pipeline / hand loop

HAND_LOOP = """
import base64, json, pathlib, sys
from writer import StreamingDatasetWriter
raw, out = pathlib.Path(sys.argv[1]), sys.argv[2]
with StreamingDatasetWriter(out, ["uid", "caption", "payload"]) as writer:
    for path in sorted(raw.glob("*.jsonl")):
        with path.open("rb") as lines:
            for line in lines:
                record = json.loads(line)
                writer.write_sample({"uid": record["uid"].encode(), "caption": record["caption"].encode(),
                                     "payload": base64.b64decode(record["payload"])})
print(writer.total_samples)
"""


def pipeline_command(raw: Path, out: Path) -> list[str]:
    return [*MDS_ASSETS, *build_arguments(raw, out, FIELDS), "--workers", "2", "--quiet"]


def generate(raw: Path, batch_mb: int, batches: int) -> int:
    """Data as unkind as real data: every payload random (~13 KB of base64, nothing repeats), captions
    of varied length and words, and a field that is not selected (parsed, then dropped)."""
    raw.mkdir(parents=True)
    rng = random.Random(batch_mb)
    line_bytes = len(base64.b64encode(bytes(RECORD_PAYLOAD))) + 260
    per_batch = max(1, batch_mb * 1_000_000 // line_bytes)
    for batch in range(batches):
        with (raw / f"batch-{batch:03d}.jsonl").open("w") as out:
            for number in range(per_batch):
                words = rng.choices(CAPTION_WORDS, k=rng.randint(3, 40))
                record = {
                    "uid": f"{batch}-{number}",
                    "caption": " ".join(words).capitalize() + rng.choice([".", "!", "?", " ✓"]),
                    "payload": base64.b64encode(os.urandom(RECORD_PAYLOAD)).decode(),
                    "source": {"crawl": f"cc-{rng.randrange(10**6)}", "scores": [rng.random() for _ in range(4)]},
                }
                out.write(json.dumps(record) + "\n")
    return per_batch * batches


def timed(command: list[str], home: Path) -> tuple[float, int, int, str, float]:
    """Seconds from start to exit, the peak RSS (bytes) of the process and of its largest child, its
    output, and the CPU seconds of it and its workers (user + system)."""
    home.mkdir(exist_ok=True)
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_DISABLE_TELEMETRY": "1"}
    cpu_before = _children_cpu()
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peaks: dict[int, int] = {}
    while process.poll() is None:
        _sample_peaks(process.pid, peaks)
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    stdout, stderr = process.communicate(timeout=60)
    if process.returncode != 0:
        raise SystemExit(f"{command[2][:40]}... failed:\n{stderr.decode()[-3000:]}")
    main_peak = peaks.pop(process.pid, 0)
    return seconds, main_peak, max(peaks.values(), default=0), stdout.decode(), _children_cpu() - cpu_before


def _children_cpu() -> float:
    """CPU seconds of every process this one has waited for, and of those they waited for (a build's workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _sample_peaks(pid: int, peaks: dict[int, int]) -> None:
    try:
        tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for process in tree:
        try:
            with open(f"/proc/{process.pid}/status") as status:
                hwm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
        except (OSError, StopIteration):
            continue
        peaks[process.pid] = max(peaks.get(process.pid, 0), hwm)


def measure(batch_mb: int, batches: int, repeat: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="mds-pipeline-"))
    load_before = os.getloadavg()[0]
    try:
        records = generate(root / "raw", batch_mb, batches)
        raw_mb = sum(p.stat().st_size for p in (root / "raw").iterdir()) / 1e6
        hand, pipe = [], []
        first = timed(pipeline_command(root / "raw", root / "out"), root / "home")
        for attempt in range(repeat):
            hand.append(
                timed([sys.executable, "-c", HAND_LOOP, str(root / "raw"), str(root / f"hand{attempt}")], root / "h")
            )
            shutil.rmtree(root / "out")  # one dataset per instance: the same output, built again from nothing
            pipe.append(timed(pipeline_command(root / "raw", root / "out"), root / "home"))
    finally:
        shutil.rmtree(root)
    best_hand, best_pipe = min(hand), min(pipe)
    built = re.search(r"partitions built: (\d+)", first[3])
    partitions = int(built.group(1)) if built else 0
    print(f"\n{batches} batches x {batch_mb} MB ({raw_mb:,.0f} MB raw, {records:,} records), best of {repeat}")
    print(
        f"  {partitions} partitions: {min(partitions, 2)} build run(s) on --workers 2, then the publish run; "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    for name, (seconds, main_peak, worker_peak, _, cpu) in (("hand loop", best_hand), ("mds-assets build", best_pipe)):
        workers = f", largest worker {worker_peak / 2**20:5.0f} MB" if worker_peak else ""
        print(
            f"  {name:<18}{seconds:7.2f} s  {raw_mb / seconds:7.1f} MB/s  CPU {cpu:6.2f} s  "
            f"peak RSS {main_peak / 2**20:5.0f} MB{workers}"
        )
    print(f"  {'(first build)':<18}{first[0]:7.2f} s  (creates the DAGSTER_HOME's SQLite instance)")
    print(f"  CPU build / hand loop: {best_pipe[4] / best_hand[4]:.2f}x (of the runs above: what load cannot hide)")
    ratio = best_pipe[0] / best_hand[0]
    target = TARGETS.get(batch_mb)
    verdict = f" (target <= {target:.1f}x: {'met' if ratio <= target else 'NOT met'})" if target else ""
    print(f"  ratio build / hand loop: {ratio:.2f}x{verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-mb", default="2,80", help="comma-separated batch sizes in MB (default 2,80)")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    for batch_mb in (int(size) for size in args.batch_mb.split(",")):
        measure(batch_mb, args.batches, args.repeat)


if __name__ == "__main__":
    main()
