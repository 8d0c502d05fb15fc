"""An MDS v2 dataset written by `MDSWriter` straight to an S3-compatible server reads back in
mosaicml-streaming's own `StreamingDataset` (`remote='s3://…'`) and in `MDSDataset`, and verifies."""

import pytest

from tests.streaming_reference import dataset_module
from writer import MDSDataset, MDSWriter
from writer.verify import verify

pytestmark = pytest.mark.slow

COLUMNS = {"text": "str", "n": "int64", "meta": "json"}


def rows(count):
    return [{"text": f"sample {n}", "n": n, "meta": {"tags": [n]}} for n in range(count)]


@pytest.mark.parametrize("compression", [None, "zstd"])
def test_streaming_dataset_streams_our_s3_dataset(s3, tmp_path, monkeypatch, compression):
    s3.client().create_bucket(Bucket="mdsv2")
    url = f"s3://mdsv2/ds-{compression}"
    with MDSWriter(out=url, columns=COLUMNS, compression=compression, hashes=["sha1"], size_limit=600) as writer:
        for sample in rows(80):
            writer.write(sample)
    assert len(writer.shards) > 3

    assert list(MDSDataset(url, decoders="auto")) == rows(80)
    assert verify(url).ok

    monkeypatch.setenv("S3_ENDPOINT_URL", s3.endpoint)  # how S's downloader is pointed at a server
    dataset = dataset_module().StreamingDataset(
        remote=url, local=str(tmp_path / "cache"), shuffle=False, batch_size=1, validate_hash="sha1"
    )
    assert [dict(dataset[n]) for n in range(len(dataset))] == rows(80)
