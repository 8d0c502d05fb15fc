"""Memory stays O(one shard) plus a few bytes per sample, over millions of samples."""

import json
import subprocess
import sys
import textwrap

PEAK_RSS = textwrap.dedent("""
    import json, sys
    from writer import StreamingDatasetWriter
    count = int(sys.argv[2])
    with StreamingDatasetWriter(sys.argv[1], ["uid", "data"], shard_size_limit=1 << 20) as writer:
        for number in range(count):
            writer.write_sample({"uid": number.to_bytes(8, "little"), "data": b"0123456789"})
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork and exec, so this child would
    # report the (larger) test process it was started from, and the comparison would mean nothing.
    peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(json.dumps({"peak_kib": peak}))
""")


def peak_rss_bytes(directory, count):
    result = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, str(directory), str(count)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(result.stdout)["peak_kib"] * 1024


def test_peak_memory_grows_by_at_most_8_bytes_per_sample(tmp_path):
    small = peak_rss_bytes(tmp_path / "small", 200_000)
    large = peak_rss_bytes(tmp_path / "large", 3_200_000)
    per_sample = (large - small) / 3_000_000
    assert per_sample <= 8, f"{per_sample:.1f} bytes of memory per extra sample"
