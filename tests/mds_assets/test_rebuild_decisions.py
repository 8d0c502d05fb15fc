"""Everyday trips: a respelt setting rebuilds nothing; a damaged manifest is a failed check, not a crash."""

import json

from mds_assets.build import build
from mds_assets.checks import shard_size_result
from mds_assets.resources import MDSSettings


def test_the_same_compression_spelt_two_ways_rebuilds_nothing(instance, settings):
    gz = MDSSettings(**{**settings.model_dump(), "compression": "gz"})
    assert build(gz, workers=1, progress=False).ok
    gz6 = MDSSettings(**{**settings.model_dump(), "compression": "gz:6"})
    report = build(gz6, workers=1, progress=False)
    assert report.ok and report.built == [] and len(report.unchanged) == 3


def test_shard_size_reports_a_manifest_shorter_than_the_index(instance, settings):
    assert build(settings, workers=1, progress=False).ok
    partition = f"{settings.out_url}/partitions/batch-0"
    manifest_path = f"{partition}/mds_manifest.json"
    manifest = json.loads(open(manifest_path).read())
    assert len(manifest["shards"]) > 1
    manifest["shards"] = manifest["shards"][:1]
    open(manifest_path, "w").write(json.dumps(manifest))
    result = shard_size_result(partition, settings.shard_size_limit, None)
    assert not result.passed and "the manifest lists 1 shard, the index" in (result.description or "")


def test_a_partition_that_lost_a_shard_is_rebuilt_by_the_next_build(instance, settings):
    import os

    assert build(settings, workers=1, progress=False).ok
    os.remove(f"{settings.out_url}/partitions/batch-1/000000.mds")
    report = build(settings, workers=1, progress=False)
    assert report.ok and report.built == ["batch-1"]
