"""The names of the asset graph, once: asset keys and check keys that several modules refer to."""

from dagster import AssetCheckKey, AssetKey

RAW_SAMPLES = AssetKey("raw_samples")
SELECTED_SAMPLES = AssetKey("selected_samples")
MDS_SHARDS = AssetKey("mds_shards")
MDS_INDEX = AssetKey("mds_index")

SHARD_SIZE = "shard_size"
INDEX_CONSISTENCY = "index_consistency"
SAMPLES_DECODE = "samples_decode"

CHECK_KEYS = [
    AssetCheckKey(MDS_SHARDS, SHARD_SIZE),
    AssetCheckKey(MDS_INDEX, INDEX_CONSISTENCY),
    AssetCheckKey(MDS_INDEX, SAMPLES_DECODE),
]
