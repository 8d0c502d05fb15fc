"""Crafted indexes and manifests: every count is checked before anything is allocated.

The CLI runs in a subprocess under an address-space limit (so an unfixed reader fails fast
instead of eating the shared machine's memory), and its peak RSS is read with `os.wait4`.
"""

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import writer
from writer import MDSDataset, StreamingDatasetWriter
from writer import format as mds
from writer.manifest import Manifest
from writer.verify import verify

from .helpers import seed_samples

REPO = Path(writer.__file__).resolve().parent.parent
MAX_RSS_BYTES = 150 << 20  # a bare `mds` run peaks at ~35 MiB
ADDRESS_SPACE_LIMIT = 1 << 30  # the unfixed reader asked for 1-2 GB and more


CONSTANT_26 = struct.pack("<iq", 0, 26)
TWO_FIELDS = struct.pack("<i2i", 2, 3, 4) + b"uiddata"


def craft(
    samples=(100,),
    nbytes=(2600,),
    *,
    num_shards=None,
    total_samples=None,
    total_bytes=None,
    sizes=CONSTANT_26,
    fields=TWO_FIELDS,
) -> bytes:
    """An index as the format lays it out, with any field of it forged."""
    head = struct.pack(
        "<IIIqq",
        mds.MAGIC,
        mds.VERSION,
        len(samples) if num_shards is None else num_shards,
        sum(samples) if total_samples is None else total_samples,
        sum(nbytes) if total_bytes is None else total_bytes,
    )
    return head + struct.pack(f"<{len(samples)}q", *samples) + struct.pack(f"<{len(nbytes)}q", *nbytes) + sizes + fields


ONE_FIELD = struct.pack("<ii", 1, 3) + b"uid"

# name -> (index bytes, what the error must say)
CRAFTED = {
    "constant size, 2**27 samples, 2600 bytes": (
        craft((1 << 27,), (2600,), fields=ONE_FIELD),
        r"constant sample size 26 .* 134217728 samples",
    ),
    "constant size, 2**40 samples, 2600 bytes": (
        craft((1 << 40,), (2600,), fields=ONE_FIELD),
        r"constant sample size 26",
    ),
    "constant size 0, 2**40 samples, 0 bytes": (
        craft((1 << 40,), (0,), sizes=struct.pack("<iq", 0, 0), fields=ONE_FIELD),
        r"smaller than .*size header",
    ),
    "negative constant size": (craft((0,), (0,), sizes=struct.pack("<iq", 0, -8)), r"negative constant sample size"),
    "negative field count": (craft(fields=struct.pack("<i", -1)), r"negative field count -1"),
    "huge field count": (craft(fields=struct.pack("<i", 2**31 - 1)), r"truncated while reading field name lengths"),
    "negative name length": (
        craft(fields=struct.pack("<i2i", 2, 3, -4) + b"uiddata"),
        r"field 1's name has a negative length -4",
    ),
    "huge name length": (
        craft(fields=struct.pack("<i2i", 2, 3, 2**31 - 1) + b"uiddata"),
        r"truncated while reading field names",
    ),
    "field name not UTF-8": (
        craft(fields=struct.pack("<i2i", 2, 3, 4) + b"uid\xff\xfeta"),
        r"field 1's name is not UTF-8",
    ),
    "no fields but samples": (craft(fields=struct.pack("<i", 0)), r"no fields"),
    "negative total samples": (
        craft((0,), (0,), total_samples=-5, sizes=struct.pack("<i", 1)),
        r"negative sample count -5",
    ),
    "negative total bytes": (craft((0,), (0,), total_bytes=-26, sizes=struct.pack("<i", 1)), r"negative byte count"),
    "negative samples in a shard": (
        craft((3, -1), (78, 0), sizes=struct.pack("<i", 1) + b"\x1a\x1a"),
        r"shard 1 .*negative sample count -1",
    ),
    "negative bytes in a shard": (
        craft((1, 1), (52, -26), sizes=struct.pack("<i", 1) + b"\x1a\x1a"),
        r"shard 1 .*negative byte count -26",
    ),
    "int8 sizes claiming 2**40 samples": (
        craft((1 << 40,), (2600,), sizes=struct.pack("<i", 1) + b"\x1a" * 100),
        r"truncated while reading sample sizes",
    ),
    "int64 sizes claiming 2**60 samples": (
        craft((1 << 60,), (2600,), sizes=struct.pack("<i", 8) + b"\x1a" * 100),
        r"truncated while reading sample sizes",
    ),
    "2**32-1 shards": (craft(num_shards=2**32 - 1), r"truncated while reading samples per shard"),
    "shard sample counts that do not add up": (craft(total_samples=99), r"shards hold 100 samples, header says 99"),
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_a_crafted_index_is_refused_with_a_format_error_naming_it(name):
    data, message = CRAFTED[name]
    with pytest.raises(mds.FormatError, match=message) as raised:
        mds.decode_index(data, "s3://bucket/ds/index.mds")
    assert str(raised.value).startswith("s3://bucket/ds/index.mds: ")


VALID = {
    "seed": craft(),
    "empty": craft((), (), sizes=struct.pack("<i", 1)),
    "empty shard 0": craft((0, 2), (0, 52), sizes=struct.pack("<i", 1) + b"\x1a\x1a"),
    "int16": craft((2,), (26 + 300,), sizes=struct.pack("<i2h", 2, 26, 300)),
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_sound_indexes_still_decode(name):
    index = mds.decode_index(VALID[name])
    assert index.fields == ("uid", "data") and len(index.sample_sizes) == index.total_samples


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(sorted(VALID) + sorted(CRAFTED)),
    edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 300),
)
def test_any_damaged_index_raises_only_format_errors(base, edits, cut):
    data = bytearray((VALID.get(base) or CRAFTED[base][0])[: cut or None])
    for position, value in edits:
        if position < len(data):
            data[position] = value
    try:
        mds.decode_index(bytes(data), "index.mds")
    except mds.FormatError as error:
        assert str(error).startswith("index.mds: ")


# -- the CLI in a subprocess, with its peak memory --------------------------------------------


# Runs the CLI in a fresh interpreter that limits its own address space and records its own peak
# RSS (VmHWM, in KiB) when it ends. Not ru_maxrss: Linux carries it across fork and exec, so a
# child of a large test process would report the test process's size.
_CHILD = """
import atexit, resource, sys  # noqa: E401
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
atexit.register(lambda: open({rss_file!r}, "w").write(
    next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))))
from writer.cli import main
sys.argv[0] = "mds"
sys.exit(main(sys.argv[1:]))
"""


def run_mds(*args: str, tmp_path: Path) -> tuple[int, str, str, int]:
    """`mds ARGS` in a fresh interpreter -> (exit code, stdout, stderr, its peak RSS in bytes)."""
    rss_file = tmp_path / "peak_rss.txt"
    child = _CHILD.format(limit=ADDRESS_SPACE_LIMIT, rss_file=str(rss_file))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.run(
        [sys.executable, "-c", child, *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    return process.returncode, process.stdout, process.stderr, int(rss_file.read_text()) * 1024


def assert_reported(result, name: str, message: str = "") -> None:
    code, stdout, stderr, max_rss = result
    assert "Traceback" not in stdout + stderr and "MemoryError" not in stdout + stderr, stdout + stderr
    assert code == 1, stdout + stderr
    if stderr:  # head and inspect: one line naming the file
        assert len(stderr.splitlines()) == 1 and stderr.startswith("mds: "), stderr
        assert name in stderr and message in stderr, stderr
    else:  # verify: a report whose problems name it
        problems = [line for line in stdout.splitlines() if line.startswith("  problem: ")]
        assert stdout.startswith("FAILED") and any(name in line and message in line for line in problems), stdout
    assert max_rss < MAX_RSS_BYTES, f"peak RSS {max_rss >> 20} MiB"


@pytest.fixture
def dataset_dir(tmp_path):
    directory = tmp_path / "ds"
    with StreamingDatasetWriter(str(directory), ["uid", "data"]) as writer:
        writer.write_samples(seed_samples(), use_tqdm=False)
    return directory


CLI_CASES = {
    "2**27 samples of a constant size": (craft((1 << 27,), (2600,), fields=ONE_FIELD), "index.mds"),
    "2**40 samples of a constant size, consistent byte counts": (
        craft((1 << 40,), (26 << 40,), fields=ONE_FIELD),
        "000000.mds",
    ),
    "negative field count": (craft(fields=struct.pack("<i", -1)), "index.mds"),
}


@pytest.mark.parametrize("command", [["head"], ["verify", "--quiet"], ["inspect"]])
@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_the_cli_reports_a_crafted_index_in_bounded_memory(dataset_dir, tmp_path, command, case):
    data, named = CLI_CASES[case]
    (dataset_dir / "index.mds").write_bytes(data)
    result = run_mds(*command, str(dataset_dir), tmp_path=tmp_path)
    if command == ["inspect"] and named != "index.mds":
        assert result[0] == 0 and result[3] < MAX_RSS_BYTES  # the index itself is consistent: inspect shows it
        return
    assert_reported(result, str(dataset_dir / named))


def _gzip_stream(pieces) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join(compressor.compress(piece) for piece in pieces) + compressor.flush()


def _zeros(megabytes: int):
    chunk = bytes(1 << 20)
    return (chunk for _ in range(megabytes))


@pytest.fixture
def gz_dataset_dir(tmp_path):
    directory = tmp_path / "gz"
    with StreamingDatasetWriter(str(directory), ["uid", "data"], compression="gz") as writer:
        writer.write_samples(seed_samples(), use_tqdm=False)
    return directory


@pytest.mark.parametrize("command", [["head"], ["verify", "--quiet"], ["inspect"]])
def test_a_gzip_bomb_index_with_bad_magic_is_reported_without_inflating_it(gz_dataset_dir, tmp_path, command):
    bomb = _gzip_stream(_zeros(200))  # ~200 KB that inflates to 200 MB
    assert len(bomb) < 250_000
    (gz_dataset_dir / "index.mds.gz").write_bytes(bomb)
    assert_reported(
        run_mds(*command, str(gz_dataset_dir), tmp_path=tmp_path), str(gz_dataset_dir / "index.mds.gz"), "bad magic"
    )


def test_a_gzip_index_claiming_more_than_it_holds_is_reported_in_bounded_memory(gz_dataset_dir, tmp_path):
    claims = craft((1 << 27,), (26 << 27,), sizes=struct.pack("<i", 1) + b"\x1a" * 1000)
    (gz_dataset_dir / "index.mds.gz").write_bytes(_gzip_stream([claims]))
    assert_reported(
        run_mds("head", str(gz_dataset_dir), tmp_path=tmp_path),
        str(gz_dataset_dir / "index.mds.gz"),
        "truncated while reading sample sizes",
    )


def test_a_gzip_bomb_shard_is_reported_without_inflating_it(gz_dataset_dir, tmp_path):
    (gz_dataset_dir / "000000.mds.gz").write_bytes(_gzip_stream(_zeros(200)))
    # neither reads a shard of another size than the manifest records (so nothing is inflated)
    for command, message in (
        (["head"], "longer than the 463 the manifest gives it"),
        (["verify", "--quiet"], "; not read"),
    ):
        assert_reported(
            run_mds(*command, str(gz_dataset_dir), tmp_path=tmp_path), str(gz_dataset_dir / "000000.mds.gz"), message
        )


def _deep_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_a_deeply_nested_manifest_is_not_a_valid_manifest(dataset_dir, tmp_path):
    (dataset_dir / "mds_manifest.json").write_bytes(_deep_json(200_000))
    with pytest.raises(ValueError, match="mds_manifest.json: not a valid manifest"):
        Manifest.from_json((dataset_dir / "mds_manifest.json").read_bytes(), str(dataset_dir / "mds_manifest.json"))
    with pytest.raises(ValueError, match="not a valid manifest"):
        MDSDataset(str(dataset_dir)).manifest()
    report = verify(str(dataset_dir))
    assert not report.ok and any("not a valid manifest" in problem for problem in report.problems)
    assert_reported(
        run_mds("verify", "--quiet", str(dataset_dir), tmp_path=tmp_path),
        str(dataset_dir / "mds_manifest.json"),
        "not a valid manifest",
    )


@pytest.mark.parametrize(
    "document",
    [b"[]", b"null", b'"text"', b'{"settings": []}', b"\xff\xfe", json.dumps({"settings": {"fields": 5}}).encode()],
)
def test_a_manifest_of_the_wrong_shape_is_not_a_valid_manifest(document):
    with pytest.raises(ValueError, match="m.json: not a valid manifest"):
        Manifest.from_json(document, "m.json")


def test_bounded_gunzip_reads_what_gzip_reads_and_stops_past_the_limit():
    import gzip

    from writer.compression import parse_compression

    gz = parse_compression("gz")
    two_members = gzip.compress(b"abc") + gzip.compress(b"defg")
    assert gz.decompress(two_members, "f.gz", 7) == b"abcdefg"
    assert gz.decompress(two_members, "f.gz", 5) == b"abcdef"  # one byte past the limit: the caller says "more"
    with pytest.raises(ValueError, match="f.gz: corrupt gz data"):
        gz.decompress(two_members[:-3], "f.gz", 7)
    with pytest.raises(ValueError, match="f.gz: corrupt gz data"):
        gz.decompress(two_members + b"garbage!", "f.gz", 7)


@pytest.fixture(scope="module")
def small_datasets(tmp_path_factory):
    """One plain and one gz dataset of 3 variable-size shards, for damaging their indexes."""
    directories = {}
    for compression in (None, "gz"):
        directory = tmp_path_factory.mktemp(f"small-{compression}") / "ds"
        with StreamingDatasetWriter(
            str(directory), ["uid", "data"], shard_size_limit=60, compression=compression
        ) as writer:
            writer.write_samples(({"uid": b"%d" % ix, "data": b"x" * ix} for ix in range(8)), use_tqdm=False)
        directories[compression] = directory
    return directories


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    compression=st.sampled_from([None, "gz"]),
    edits=st.lists(st.tuples(st.integers(0, 150), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.integers(0, 160),
)
def test_the_cli_reports_any_damaged_index_without_raising(small_datasets, compression, edits, cut):
    import contextlib
    import gzip
    import io

    from writer.cli import main

    directory = small_datasets[compression]
    name = "index.mds.gz" if compression else "index.mds"
    original = (directory / name).read_bytes()
    data = bytearray(gzip.decompress(original) if compression else original)[: cut or None]
    for position, value in edits:
        if position < len(data):
            data[position] = value
    (directory / name).write_bytes(gzip.compress(bytes(data)) if compression else bytes(data))
    try:
        for command in (["inspect"], ["head", "-n", "20"], ["verify", "--quiet"]):
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                assert main([*command, str(directory)]) in (0, 1)
    finally:
        (directory / name).write_bytes(original)


def test_unbounded_gunzip_is_gzip_decompress():
    import gzip

    from writer.compression import parse_compression

    data = gzip.compress(b"abc") + gzip.compress(b"defg")
    assert parse_compression("gz:1").decompress(data, "f.gz") == gzip.decompress(data) == b"abcdefg"
