"""Merging random partitions equals reading them one after another, and Composer reads the result."""

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from writer import MDSDataset, StreamingDatasetWriter
from writer import format as mds
from writer.merge import MergeError, merge_datasets
from writer.verify import verify

from .composer_reference import composer_format
from .test_composer_format import read_with_composer

# payload sizes around every width boundary of a record (8-byte header + payload): int8, int16, int32
PAYLOAD_SIZES = st.sampled_from([0, 1, 50, 119, 120, 121, 300, 32_759, 32_760, 32_761, 70_000])
PARTITION = st.one_of(
    st.lists(PAYLOAD_SIZES, min_size=0, max_size=6),  # varying sizes (or empty)
    st.tuples(PAYLOAD_SIZES, st.integers(1, 5)).map(lambda pair: [pair[0]] * pair[1]),  # constant size
)
counter = itertools.count()


@pytest.fixture(scope="module")
def composer():
    return composer_format()


def write_partition(url, sizes, compression, limit):
    with StreamingDatasetWriter(url, ["a"], shard_size_limit=limit, compression=compression) as writer:
        for number, size in enumerate(sizes):
            writer.write_sample({"a": bytes([number % 256]) * size})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    partitions=st.lists(st.tuples(PARTITION, st.sampled_from([None, "gz"])), min_size=1, max_size=6),
    limit=st.sampled_from([200, 40_000, 1 << 20]),
)
def test_a_merge_reads_as_its_partitions_one_after_another(tmp_path, composer, partitions, limit):
    run = tmp_path / f"run{next(counter)}"
    urls = []
    for number, (sizes, compression) in enumerate(partitions):
        urls.append(str(run / f"p{number}"))
        write_partition(urls[-1], sizes, compression, limit)
    if len({compression for _, compression in partitions}) > 1:
        with pytest.raises(MergeError, match="is compressed"):
            merge_datasets(urls, str(run / "out"))
        assert not (run / "out" / "index.mds").exists() and not (run / "out" / "index.mds.gz").exists()
        return
    merge_datasets(urls, str(run / "out"))
    expected = [sample for url in urls for sample in MDSDataset(url)]
    merged = MDSDataset(str(run / "out"))
    assert list(merged) == expected
    record_sizes = [8 + len(sample["a"]) for sample in expected]
    if record_sizes and len(set(record_sizes)) == 1:
        assert merged.index.size_format == mds.CONSTANT_SIZE_FORMAT
    elif record_sizes:
        assert merged.index.size_format == mds.narrowest_size_format(max(record_sizes))
    assert verify(str(run / "out")).ok
    if expected:  # Composer's own reader, on every merged result it can hold
        assert read_with_composer(composer, run / "out") == expected
