"""mosaicml-streaming 0.13.0's own `StreamingDataset` reads what `MDSWriter` writes, with every
compression, as the samples written."""

import math

import pytest

from tests.streaming_reference import dataset_module
from writer import MDSWriter

COLUMNS = {
    "text": "str",
    "blob": "bytes",
    "n": "int64",
    "small": "uint8",
    "x": "float32",
    "half": "float16",
    "meta": "json",
    "ratio": "str_float",
}


def samples(count):
    return [
        {
            "text": f"sample {number} " + "é" * (number % 5),
            "blob": bytes(range(number % 256)) * 3,
            "n": number * 1_000_003 - 500,
            "small": number % 256,
            "x": number / 4,
            "half": number / 8,
            "meta": {"tags": ["a", number], "ok": number % 2 == 0},
            "ratio": number / 3,
        }
        for number in range(count)
    ]


@pytest.mark.parametrize("compression", [None, "zstd", "zstd:9", "gz", "gz:1", "bz2", "br:4", "snappy"])
def test_streaming_dataset_reads_our_dataset_as_written(tmp_path, compression):
    written = samples(120)
    with MDSWriter(
        out=str(tmp_path / "ds"), columns=COLUMNS, compression=compression, hashes=["sha1", "xxh64"], size_limit=4000
    ) as writer:
        for sample in written:
            writer.write(sample)
    assert len(writer.shards) > 3

    dataset = dataset_module().StreamingDataset(local=str(tmp_path / "ds"), shuffle=False, batch_size=1)
    assert len(dataset) == len(written)
    for number, expected in enumerate(written):
        read = dataset[number]
        assert sorted(read) == sorted(expected)
        for column, value in expected.items():
            assert read[column] == value or math.isclose(read[column], value), (number, column)
