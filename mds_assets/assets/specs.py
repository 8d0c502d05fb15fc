"""What the batch pipeline's three assets share: their group, owners, and that one step makes them."""

from collections.abc import Sequence

from dagster import AssetKey, AssetSpec

GROUP = "mds"
OWNERS = ["team:data-engineering"]


def partition_asset_spec(key: AssetKey, description: str, kinds: set[str], deps: Sequence[AssetKey] = ()) -> AssetSpec:
    """A partitioned asset materialised by `batch_pipeline`, each partition on its own: skippable,
    since a run materialises it only for the partitions that succeed (one run can build many)."""
    return AssetSpec(
        key, deps=list(deps), description=description, group_name=GROUP, kinds=kinds, owners=OWNERS, skippable=True
    )
