"""What the next build rebuilds: nothing for a setting spelt another way, a partition that lost a shard."""

from mds_assets.build import build
from mds_assets.resources import MDSSettings


def test_the_same_compression_spelt_two_ways_rebuilds_nothing(instance, settings):
    gz = MDSSettings(**{**settings.model_dump(), "compression": "gz"})
    assert build(gz, workers=1, progress=False).ok
    gz6 = MDSSettings(**{**settings.model_dump(), "compression": "gz:6"})
    report = build(gz6, workers=1, progress=False)
    assert report.ok and report.built == [] and len(report.unchanged) == 3


def test_a_partition_that_lost_a_shard_is_rebuilt_by_the_next_build(instance, settings):
    import os

    assert build(settings, workers=1, progress=False).ok
    os.remove(f"{settings.out_url}/partitions/batch-1/000000.mds")
    report = build(settings, workers=1, progress=False)
    assert report.ok and report.built == ["batch-1"]
