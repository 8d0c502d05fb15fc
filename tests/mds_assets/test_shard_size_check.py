"""The shard_size check on a damaged partition: a failed check naming the damage, not a crash."""

import json

from mds_assets.build import build
from mds_assets.checks import shard_size_result


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
