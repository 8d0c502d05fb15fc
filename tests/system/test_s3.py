"""The whole pipeline on a real S3-compatible server: s3:// raw batches to an s3:// dataset."""

import json

import pytest

from mds_assets.build import build
from mds_assets.resources import MDSSettings
from writer import MDSDataset, StreamingDatasetWriter
from writer.storage import Storage
from writer.verify import verify

from ..mds_assets.conftest import FIELDS, record
from .conftest import ACCESS_KEY, SECRET_KEY

pytestmark = pytest.mark.system


def upload_batches(s3, bucket, batches, records=30, start=0):
    client = s3.client()
    if start == 0:
        client.create_bucket(Bucket=bucket)
    for batch in range(start, start + batches):
        body = "".join(json.dumps(record(batch, n)) + "\n" for n in range(records))
        client.put_object(Bucket=bucket, Key=f"raw/batch-{batch}.jsonl", Body=body.encode())


def published_objects(s3, bucket="lake"):
    """The published dataset's top-level objects with their bytes (partitions excluded: they are
    the build's, not part of the dataset)."""
    client = s3.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="mds/").get("Contents", [])]
    return {key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys if "/partitions/" not in key}


def settings(compression=None, shard_size_limit=1500):
    return MDSSettings(
        raw_url="s3://lake/raw",
        out_url="s3://lake/mds",
        fields=FIELDS,
        shard_size_limit=shard_size_limit,
        compression=compression,
        partition_bytes=1,  # a partition per batch: the outage hits batch-2's partition
    )


@pytest.mark.parametrize("compression", [None, "gz"])
def test_the_pipeline_builds_an_s3_dataset_that_reads_back(s3, instance, compression):
    upload_batches(s3, "lake", 3)
    report = build(settings(compression), workers=2, progress=False)
    assert report.ok, report.failed
    dataset = MDSDataset("s3://lake/mds")
    assert len(dataset) == 90 and dataset[-1]["uid"] == b"2-29"
    assert dataset.compression.scheme == (compression or "none")
    assert report.published["placement"].value == "server-side copy"
    assert verify("s3://lake/mds").ok


def test_the_writer_writes_and_reads_s3_directly(s3):
    s3.client().create_bucket(Bucket="direct")
    with StreamingDatasetWriter("s3://direct/ds", ["a"], shard_size_limit=64) as writer:
        writer.write_samples(({"a": b"%05d" % n} for n in range(100)), use_tqdm=False)
    assert [s["a"] for s in MDSDataset("s3://direct/ds")] == [b"%05d" % n for n in range(100)]


def test_a_server_outage_mid_partition_fails_clearly_and_changes_nothing_published(s3, instance, monkeypatch):
    upload_batches(s3, "lake", 2)
    assert build(settings(), workers=1, progress=False).ok
    before = published_objects(s3)
    upload_batches(s3, "lake", 1, records=60, start=2)

    real_write = Storage.write_atomic
    shards_written = []

    def outage_after_two_shards(self, name, data):
        if self.url.endswith("/batch-2") and name.endswith(".mds"):
            shards_written.append(name)
            if len(shards_written) == 3:
                s3.stop()  # the server goes away in the middle of the partition
        return real_write(self, name, data)

    monkeypatch.setattr(Storage, "write_atomic", outage_after_two_shards)
    report = build(settings(), workers=1, progress=False)
    assert list(report.failed) == ["batch-2"]
    assert "could not write shard s3://lake/mds/partitions/.staging/batch-2/000002.mds" in report.failed["batch-2"]
    assert SECRET_KEY not in report.failed["batch-2"]

    s3.start()
    monkeypatch.setattr(Storage, "write_atomic", real_write)
    after = published_objects(s3)
    assert after == before, (sorted(before), sorted(after), after.get("mds/mds_partitions.json"))
    assert len(MDSDataset("s3://lake/mds")) == 60

    rerun = build(settings(), workers=1, progress=False)
    assert rerun.ok and rerun.built == ["batch-2"]
    assert [s["uid"] for s in MDSDataset("s3://lake/mds")][-1] == b"2-59"
    assert len(MDSDataset("s3://lake/mds")) == 120


def test_credentials_never_reach_logs_metadata_or_run_config(s3, instance, capfd):
    upload_batches(s3, "lake", 2)
    report = build(settings(), workers=1, progress=False)
    assert report.ok
    stored = []
    for run in instance.get_runs():
        stored.append(json.dumps(run.run_config))
        stored.extend(str(entry) for entry in instance.all_logs(run.run_id))
    text = "\n".join(stored) + capfd.readouterr().out + capfd.readouterr().err
    assert len(stored) > 10
    assert SECRET_KEY not in text and ACCESS_KEY not in text


def test_a_streaming_format_build_on_s3_is_read_by_streaming_from_s3(s3, instance, monkeypatch, tmp_path):
    from ..mds_assets.test_streaming_format import as_records, streaming_dataset

    upload_batches(s3, "lake", 3)
    chosen = MDSSettings(**{**settings(compression="zstd").model_dump(), "format": "streaming"})
    report = build(chosen, workers=2, progress=False)
    assert report.ok, report.failed
    assert report.published["placement"].value == "by reference (index.json written)"
    assert report.checks == {"index_consistency": True, "samples_decode": True}
    objects = published_objects(s3)
    assert sorted(objects) == ["mds/index.json"]  # publishing wrote one object; every shard stays in partitions/
    monkeypatch.setenv("S3_ENDPOINT_URL", s3.endpoint)  # where mosaicml-streaming's downloader looks
    dataset = streaming_dataset("s3://lake/mds", tmp_path / "cache")
    assert len(dataset) == 90
    for number in range(90):
        as_records(dataset[number], number // 30, number % 30)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["index.json", "partitions"]  # downloaded
