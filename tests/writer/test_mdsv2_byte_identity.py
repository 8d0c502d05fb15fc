"""`MDSWriter` writes, uncompressed, the very bytes of mosaicml-streaming 0.13.0's `MDSWriter`:
`index.json` and every shard, for the same samples, columns, hashes and size limit."""

import json
import string
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
import zstd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.streaming_reference import mds_writer_module
from writer import MDSWriter

INTEGERS = {
    "int8": (-(1 << 7), (1 << 7) - 1),
    "int16": (-(1 << 15), (1 << 15) - 1),
    "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "int": (-(1 << 63), (1 << 63) - 1),
    "uint8": (0, (1 << 8) - 1),
    "uint16": (0, (1 << 16) - 1),
    "uint32": (0, (1 << 32) - 1),
    "uint64": (0, (1 << 64) - 1),
}
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
VALUES = {
    "bytes": st.binary(max_size=80),
    "str": st.text(max_size=30),
    **{name: st.integers(low, high) for name, (low, high) in INTEGERS.items()},
    "float16": st.floats(width=16),
    "float32": st.floats(width=32),
    "float64": st.floats(),
    "json": JSON,
    "pkl": st.lists(st.integers() | st.text(max_size=5), max_size=4),
    "str_int": st.integers(),
    "str_float": st.floats(allow_nan=False),
    "str_decimal": st.decimals(allow_nan=False, allow_infinity=False, places=3).map(Decimal),
    "jpeg": st.binary(max_size=40).map(lambda tail: b"\xff\xd8\xff" + tail),
    "png": st.binary(max_size=40).map(lambda tail: b"\x89PNG\r\n\x1a\n" + tail),
}
HASHES = ["blake2b", "md5", "sha1", "sha256", "xxh128", "xxh32", "xxh3_64", "xxh64"]


@st.composite
def datasets(draw):
    names = draw(st.lists(st.text(string.ascii_lowercase, min_size=1, max_size=4), min_size=1, max_size=4, unique=True))
    columns = {name: draw(st.sampled_from(sorted(VALUES))) for name in names}
    samples = draw(
        st.lists(st.fixed_dictionaries({name: VALUES[encoding] for name, encoding in columns.items()}), max_size=25)
    )
    hashes = sorted(draw(st.sets(st.sampled_from(HASHES), max_size=3)))
    # Limits below a shard's config make oversized samples (and S's empty first shard).
    size_limit = draw(st.none() | st.integers(1, 3000) | st.sampled_from(["1kb", "2KB", "0.5kb", "700b", "900"]))
    return columns, samples, hashes, size_limit


def write_both(root: Path, columns, samples, **options) -> tuple[Path, Path]:
    theirs, ours = root / "theirs", root / "ours"
    with mds_writer_module().MDSWriter(out=str(theirs), columns=columns, **options) as writer:
        for sample in samples:
            writer.write(sample)
    with MDSWriter(out=str(ours), columns=columns, **options) as writer:
        for sample in samples:
            writer.write(sample)
    return theirs, ours


def assert_same_files(theirs: Path, ours: Path) -> None:
    names = sorted(path.name for path in theirs.iterdir())
    assert sorted(path.name for path in ours.iterdir()) == names
    for name in names:
        assert (ours / name).read_bytes() == (theirs / name).read_bytes(), name


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(datasets())
def test_every_file_is_the_bytes_mosaicml_streaming_writes(dataset):
    columns, samples, hashes, size_limit = dataset
    with tempfile.TemporaryDirectory() as root:
        theirs, ours = write_both(Path(root), columns, samples, hashes=hashes, size_limit=size_limit)
        assert_same_files(theirs, ours)


@pytest.mark.parametrize("size_limit", [None, 1 << 26, 120, "1kb"])
def test_an_empty_dataset_is_the_same_index(tmp_path, size_limit):
    theirs, ours = write_both(tmp_path, {"text": "str"}, [], size_limit=size_limit)
    assert (ours / "index.json").read_text() == '{"shards": [], "version": 2}'
    assert_same_files(theirs, ours)


def test_an_oversized_first_sample_leaves_the_same_empty_first_shard(tmp_path):
    samples = [{"blob": b"x" * 500}, {"blob": b"y" * 10}, {"blob": b"z" * 900}]
    theirs, ours = write_both(tmp_path, {"blob": "bytes"}, samples, size_limit=300, hashes=["sha1"])
    assert_same_files(theirs, ours)
    assert len(list(ours.glob("shard.*.mds"))) == 4  # shard 0 holds no sample, as S writes it


def without_zip_data(index_file: Path) -> dict:
    index = json.loads(index_file.read_text())
    for shard in index["shards"]:
        shard["zip_data"] = {"basename": shard["zip_data"]["basename"]}
    return index


@pytest.mark.parametrize("compression", ["zstd", "zstd:5"])
def test_zstd_shards_inflate_to_the_same_bytes(tmp_path, compression):
    """Compressed bytes may differ by library (zstandard, streamed, here; the zstd package there);
    what they inflate to, and the rest of the index, may not."""
    samples = [{"text": f"line {n} " * (n % 300), "n": n} for n in range(600)]
    theirs, ours = write_both(
        tmp_path, {"text": "str", "n": "int64"}, samples, compression=compression, size_limit="100kb", hashes=["xxh64"]
    )
    assert without_zip_data(ours / "index.json") == without_zip_data(theirs / "index.json")
    names = sorted(path.name for path in theirs.glob("shard.*"))
    assert sorted(path.name for path in ours.glob("shard.*")) == names and len(names) > 3
    for name in names:
        assert zstd.decompress((ours / name).read_bytes()) == zstd.decompress((theirs / name).read_bytes()), name


def test_bytes_given_for_any_column_are_taken_as_encoded(tmp_path):
    """S's rule: a bytes value is already encoded, whatever the column's encoding."""
    samples = [{"n": (7).to_bytes(8, "little"), "meta": b'{"a": 1}', "text": b"caf\xc3\xa9"}]
    theirs, ours = write_both(tmp_path, {"n": "int64", "meta": "json", "text": "str"}, samples)
    assert_same_files(theirs, ours)
