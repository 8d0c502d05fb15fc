"""Another MDS_FIELDS (or any setting) after a restart: the sensor rebuilds every partition, and
what is published describes itself (load snippet, checks) by its own fields and encodings."""

from __future__ import annotations

from dagster import AssetSelection, build_sensor_context, materialize

from mds_assets.assets.batch_pipeline import batch_pipeline
from mds_assets.assets.index import mds_index
from mds_assets.build import build
from mds_assets.checks import index_consistency, samples_decode
from mds_assets.resources import MDSSettings
from mds_assets.sensors import raw_batch_sensor


def tick(instance, settings: MDSSettings, cursor: str | None = None):
    return raw_batch_sensor(
        build_sensor_context(instance=instance, cursor=cursor, resources={"mds_settings": settings})
    )


def with_fields(settings: MDSSettings, fields: list[str]) -> MDSSettings:
    return MDSSettings(**{**settings.model_dump(), "fields": fields})


def test_the_sensor_rebuilds_every_partition_after_the_fields_change(instance, settings):
    before = tick(instance, settings)
    assert len(before.run_requests) == 1
    assert build(settings, workers=1, progress=False).ok
    settled = tick(instance, settings, cursor=before.cursor)
    assert settled.run_requests == []

    narrower = with_fields(settings, ["uid", "text"])  # `dagster dev` restarted with another MDS_FIELDS
    after = tick(instance, narrower, cursor=settled.cursor)
    keys = [
        (r.tags.get("dagster/asset_partition_range_start"), r.tags.get("dagster/asset_partition_range_end"))
        for r in after.run_requests
    ]
    assert keys == [("batch-0", "batch-2")], keys
    # Dagster launches a run key once per sensor: the rebuild must not reuse the first build's key
    assert {r.run_key for r in after.run_requests}.isdisjoint({r.run_key for r in before.run_requests})


def test_a_publish_under_other_settings_describes_the_dataset_it_publishes(instance, settings):
    assert build(settings, workers=1, progress=False).ok
    other = with_fields(settings, ["uid", "title"])  # the partitions on storage are not rebuilt yet
    result = materialize(
        [batch_pipeline, mds_index, index_consistency, samples_decode],
        selection=AssetSelection.assets(mds_index),
        instance=instance,
        resources={"mds_settings": other},
    )
    snippet = result.asset_materializations_for_node("mds_index")[0].metadata["how_to_load"].value
    for decoder in ("'blob': lambda b: b", "'n': lambda b: int.from_bytes", "'meta': json.loads"):
        assert decoder in snippet, snippet
    assert "'title'" not in snippet
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["samples_decode"].passed, checks["samples_decode"].description
