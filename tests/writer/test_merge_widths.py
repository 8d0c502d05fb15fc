"""Merging partitions whose per-sample sizes are stored in different widths (int8 with int16, and
every other pair): the merged index uses the narrowest signed width that holds them all."""

import pytest

from writer import MDSDataset, StreamingDatasetWriter
from writer import format as mds
from writer.merge import merge_datasets
from writer.verify import verify


def write_part(url, payload_sizes):
    with StreamingDatasetWriter(url, ["a"], shard_size_limit=1 << 20) as writer:
        for number, size in enumerate(payload_sizes):
            writer.write_sample({"a": bytes([number % 251]) * size})


# record size = 8-byte header + payload: < 128 is int8, < 32768 int16, else int32; equal sizes: constant
WIDTH_MIXES = {
    "int8 + int16": [[1, 2], [300, 1]],
    "int16 + int32": [[300, 1], [40_000, 1]],
    "int8 + int32": [[1, 2], [1, 40_000]],
    "constant + int8": [[5, 5, 5], [1, 2]],
    "constant + int16": [[5, 5], [1, 300]],
    "int16 + constant + int8": [[1, 300], [7, 7], [1, 2]],
    "constant + constant": [[3, 3], [9, 9]],
}


@pytest.mark.parametrize("mix", WIDTH_MIXES)
def test_partitions_of_every_size_width_merge_into_the_narrowest_signed_width(tmp_path, mix):
    parts = []
    for number, sizes in enumerate(WIDTH_MIXES[mix]):
        parts.append(str(tmp_path / f"p{number}"))
        write_part(parts[-1], sizes)
    merge_datasets(parts, str(tmp_path / "out"))
    merged = MDSDataset(str(tmp_path / "out"))
    expected = [sample["a"] for part in parts for sample in MDSDataset(part)]
    assert [sample["a"] for sample in merged] == expected
    record_sizes = [8 + len(value) for value in expected]
    if len(set(record_sizes)) == 1:
        assert merged.index.size_format == mds.CONSTANT_SIZE_FORMAT
    else:
        assert merged.index.size_format == mds.narrowest_size_format(max(record_sizes))
    assert verify(str(tmp_path / "out")).ok
