"""Random samples and limits: what goes in comes out, and every shard keeps the invariants."""

import tempfile
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from writer import MDSDataset, StreamingDatasetWriter
from writer.format import SIZE_HEADER_ITEM

FIELDS = st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=4), min_size=1, max_size=3, unique=True)


@st.composite
def datasets(draw):
    fields = draw(FIELDS)
    value = st.binary(max_size=300)
    samples = draw(st.lists(st.fixed_dictionaries({field: value for field in fields}), max_size=60))
    limit = draw(st.integers(min_value=1, max_value=3000))
    compression = draw(st.sampled_from([None, "gz:1"]))
    return fields, samples, limit, compression


def record_size(sample, fields):
    return SIZE_HEADER_ITEM * len(fields) + sum(len(sample[field]) for field in fields)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets(), st.sampled_from(["local", "memory"]))
def test_round_trip_keeps_samples_and_shard_invariants(dataset, where):
    fields, samples, limit, compression = dataset
    with tempfile.TemporaryDirectory() as directory:
        url = directory if where == "local" else f"memory://{uuid.uuid4().hex}"
        with StreamingDatasetWriter(url, fields, shard_size_limit=limit, compression=compression) as writer:
            writer.write_samples(samples, use_tqdm=False)

        assert writer.total_samples == len(samples) == sum(writer.samples_per_shard)
        assert all(count > 0 for count in writer.samples_per_shard), "never an empty shard"
        start = 0
        for count, shard_bytes in zip(writer.samples_per_shard, writer.bytes_per_shard):
            sizes = [record_size(sample, fields) for sample in samples[start : start + count]]
            assert shard_bytes == sum(sizes)
            assert shard_bytes <= limit or count == 1, "only a lone oversized sample may exceed the limit"
            start += count

        read_back = MDSDataset(url)
        assert read_back.fields == tuple(fields)
        assert list(read_back) == [{field: sample[field] for field in fields} for sample in samples]
        if samples:
            assert read_back[-1] == {field: samples[-1][field] for field in fields}
