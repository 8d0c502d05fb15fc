"""`write_samples` and `write_sample` share one per-sample path: same bytes, same errors, same state."""

import os
import struct
import tempfile
from itertools import chain, islice
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from writer import MDSDataset, StreamingDatasetWriter, WriterStorageError

from .helpers import fail_writing


def dataset_files(directory: str) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(Path(directory).iterdir())}


def expected_shards(records: list[bytes], limit: int) -> list[bytes]:
    """A model of the format's rotation rule: a new shard before a record that would overflow a non-empty one."""
    shards: list[list[bytes]] = []
    size = 0
    for record in records:
        if shards and shards[-1] and size + len(record) > limit:
            shards.append([])
            size = 0
        if not shards:
            shards.append([])
        shards[-1].append(record)
        size += len(record)
    return [b"".join(shard) for shard in shards]


values = st.one_of(
    st.integers(0, 300),
    st.integers(0, 300),
    st.integers(0, 300),  # mostly small
    st.sampled_from([65_535 - 40, 65_536, 70_000]),  # records just under and past 64 KiB
)
kinds = st.sampled_from([bytes, bytes, bytes, bytearray, memoryview])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    field_count=st.integers(1, 4),
    rows=st.lists(st.lists(st.tuples(values, kinds), min_size=4, max_size=4), max_size=40),
    limit=st.sampled_from([1, 100, 600, 5_000, 70_000, 200_000, 1 << 24]),
    chunk=st.integers(1, 7),
)
def test_write_samples_and_write_sample_give_the_same_dataset(field_count, rows, limit, chunk):
    fields = [f"f{number}" for number in range(field_count)]

    def make_samples():  # fresh each time: bytearray values are mutated after being written, below
        for number, row in enumerate(rows):
            sample = {"extra": b"ignored"}
            for field, (size, kind) in zip(fields, row):
                sample[field] = kind(bytes([number % 251]) * size)
            yield sample
            for value in sample.values():
                if isinstance(value, bytearray):
                    value[:] = b"changed"  # the writer must have copied it

    records = [
        struct.pack(f"<{field_count}q", *(size for size, _ in row[:field_count]))
        + b"".join(bytes([number % 251]) * size for size, _ in row[:field_count])
        for number, row in enumerate(rows)
    ]
    with tempfile.TemporaryDirectory() as root:
        one_by_one, in_bulk, mixed = (os.path.join(root, name) for name in ("one", "bulk", "mixed"))
        with StreamingDatasetWriter(one_by_one, fields, shard_size_limit=limit) as writer:
            for sample in make_samples():
                writer.write_sample(sample)
        with StreamingDatasetWriter(in_bulk, fields, shard_size_limit=limit) as bulk_writer:
            bulk_writer.write_samples(make_samples(), use_tqdm=False)
        with StreamingDatasetWriter(mixed, fields, shard_size_limit=limit) as mixed_writer:
            samples = make_samples()
            for number, sample in enumerate(samples):
                if number % chunk:
                    mixed_writer.write_sample(sample)
                else:
                    mixed_writer.write_samples(chain((sample,), islice(samples, chunk)), use_tqdm=False)

        files = dataset_files(one_by_one)
        assert dataset_files(in_bulk) == files
        assert dataset_files(mixed) == files
        assert bulk_writer.total_samples == len(rows) == sum(bulk_writer.samples_per_shard)
        shards = expected_shards(records, limit)
        assert [files[f"{number:06d}.mds"] for number in range(len(shards))] == shards
        assert bulk_writer.bytes_per_shard == [len(shard) for shard in shards]
        dataset = MDSDataset(in_bulk)
        assert [len(sample[fields[0]]) for sample in dataset] == [row[0][0] for row in rows]
        if rows:
            largest = max(map(len, records))
            widths = (1, 2) if largest < 1 << 15 else (4,) if largest < 1 << 31 else (8,)
            assert dataset.index.size_format in ((0,) if min(map(len, records)) == largest else widths)


def test_sizes_widen_past_64_kib_inside_one_write_samples_call(tmp_path):
    samples = [{"data": b"a" * 10}, {"data": b"b" * 70_000}, {"data": b"c" * 10}]
    with StreamingDatasetWriter(str(tmp_path), ["data"], shard_size_limit=100) as writer:
        writer.write_samples(samples, use_tqdm=False)
    dataset = MDSDataset(str(tmp_path))
    assert dataset.index.size_format == 4
    assert [sample["data"] for sample in dataset] == [sample["data"] for sample in samples]
    assert writer.samples_per_shard == [1, 1, 1]


@pytest.mark.parametrize(
    "bad_sample, error, message",
    [
        ({"uid": b"7"}, KeyError, "sample 7 has no field 'data'"),
        ({"uid": b"7", "data": "text"}, TypeError, "sample 7, field 'data': expected bytes.*got str"),
        ({"uid": 7, "data": b""}, TypeError, "sample 7, field 'uid': expected bytes.*got int"),
        ({"uid": b"7", "data": [1]}, TypeError, "sample 7, field 'data'.*got list"),
        ([b"7", b"x"], TypeError, "sample 7 is a list, not a mapping"),
    ],
)
def test_a_bad_sample_in_the_middle_of_write_samples_keeps_what_was_before(tmp_path, bad_sample, error, message):
    good = [{"uid": b"%d" % number, "data": bytearray(b"x" * 20)} for number in range(7)]
    writer = StreamingDatasetWriter(str(tmp_path), ["uid", "data"], shard_size_limit=100)
    writer.write_sample(good[0])
    with pytest.raises(error, match=message):
        writer.write_samples([*good[1:], bad_sample, {"uid": b"never", "data": b""}], use_tqdm=False)
    assert writer.total_samples == 7
    writer.write_samples([{"uid": b"7", "data": b"after"}], use_tqdm=False)
    writer.finish()
    assert writer.samples_per_shard == [2, 2, 2, 2]  # 37 B records: shards were flushed before the error
    samples = list(MDSDataset(str(tmp_path)))
    assert [sample["uid"] for sample in samples] == [b"%d" % number for number in range(8)]
    assert samples[-1]["data"] == b"after"


def test_an_iterable_that_fails_keeps_what_it_gave(tmp_path):
    def samples():
        for number in range(5):
            yield {"uid": b"%d" % number}
        raise ValueError("source broke")

    writer = StreamingDatasetWriter(str(tmp_path), ["uid"], shard_size_limit=30)
    with pytest.raises(ValueError, match="source broke"):
        writer.write_samples(samples(), use_tqdm=False)
    writer.write_sample({"uid": b"5"})
    writer.finish()
    assert [sample["uid"] for sample in MDSDataset(str(tmp_path))] == [b"%d" % number for number in range(6)]
    assert sum(writer.bytes_per_shard) == 6 * 9 and max(writer.bytes_per_shard) <= 30


def test_a_background_failure_stops_a_long_write_samples(tmp_path, monkeypatch):
    fail_writing(monkeypatch, "000001.mds")
    writer = StreamingDatasetWriter(str(tmp_path), ["uid"], shard_size_limit=100, workers=1)

    def endless():
        number = 0
        while True:
            yield {"uid": b"%08d" % number}
            number += 1

    with pytest.raises(WriterStorageError, match="disk full"):
        writer.write_samples(endless(), use_tqdm=False)  # raised at a later flush: it does not run forever
    with pytest.raises(WriterStorageError, match="disk full"):
        writer.finish()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("bulk", [True, False])
def test_a_shard_may_be_filled_exactly_to_the_limit(tmp_path, bulk):
    samples = [{"uid": b"%02d" % number} for number in range(5)]  # 10 B records
    with StreamingDatasetWriter(str(tmp_path), ["uid"], shard_size_limit=20) as writer:
        if bulk:
            writer.write_samples(samples, use_tqdm=False)
        else:
            for sample in samples:
                writer.write_sample(sample)
    assert writer.samples_per_shard == [2, 2, 1] and writer.bytes_per_shard == [20, 20, 10]


@pytest.mark.parametrize("level", range(10))
@pytest.mark.parametrize("data", [b"", b"a", os.urandom(100_000), b"the quick brown fox " * 5_000])
def test_gz_is_standard_gzip_of_zlibs_size_and_zlibs_very_bytes_below_level_6(level, data):
    import gzip
    import zlib

    from writer.compression import FAST_DEFLATE_FROM_LEVEL, parse_compression

    ours = parse_compression(f"gz:{level}").compress(data)
    zlibs = gzip.compress(data, compresslevel=level, mtime=0)
    assert gzip.decompress(ours) == data and zlib.decompress(ours, wbits=31) == data
    assert ours[:10] == zlibs[:10] and ours[-8:] == zlibs[-8:]  # the same header, CRC-32 and length
    if level < FAST_DEFLATE_FROM_LEVEL:
        assert ours == zlibs
    else:  # zlib-ng's deflate: within 5 % of zlib's size at the same level
        assert len(ours) <= len(zlibs) * 1.05 + 8, (len(ours), len(zlibs))
