"""`mds_index`: the materialised partitions published as one dataset at the output root."""


import json

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from writer.merge import merge_datasets

from ..checks import PARTITIONS_SIDECAR
from ..partitions import partition_url, raw_batches
from ..resources import MDSSettings
from ..selection import FieldSelection
from ..stamps import has_dataset
from ..wording import plural
from .shards import MDS_SHARDS, mds_shards


@asset(
    deps=[mds_shards],
    group_name="mds",
    kinds={"python", "mds"},
    owners=["team:data-engineering"],
    pool="mds_publish",  # with a pool limit of 1 (the default dagster.yaml), publishes never overlap
)
def mds_index(context: AssetExecutionContext, mds_settings: MDSSettings) -> MaterializeResult:
    """One dataset at the output root: `index.mds` (+ `compression.txt`) over every materialised
    partition's shards, renumbered globally in partition-key order, without re-encoding a sample
    (hard links on local disks, server-side copies on object stores). The old index is removed
    before any shard name is reused and the new one is written last, so a crash never leaves an
    index pointing at missing or wrong shards; the next run repairs it."""
    keys = _partitions_to_publish(context, mds_settings)
    options = mds_settings.fsspec_options()
    sidecar = json.dumps({"partitions": keys}, indent=1).encode()
    result = merge_datasets([partition_url(mds_settings.out_url, key) for key in keys], mds_settings.out_url,
                            options, sidecars={PARTITIONS_SIDECAR: sidecar})
    manifest = result.manifest
    stored = sum(shard.stored_bytes for shard in manifest.shards)
    context.log.info(f"published {plural(manifest.total_samples, 'sample')} from {plural(len(keys), 'partition')} "
                     f"({'unchanged' if not result.changed else result.placement})")
    return MaterializeResult(metadata={
        "dagster/row_count": manifest.total_samples,
        "path": MetadataValue.path(mds_settings.out_url),
        "bytes": manifest.total_bytes,
        "stored_bytes": stored,
        "compression_ratio": round(manifest.total_bytes / stored, 3) if stored else 1.0,
        "shards": len(manifest.shards),
        "partitions": MetadataValue.json(keys),
        "changed": result.changed,
        "placement": result.placement,
        "how_to_load": MetadataValue.md(how_to_load(mds_settings.out_url, mds_settings.selections())),
    })


def _partitions_to_publish(context: AssetExecutionContext, settings: MDSSettings) -> list[str]:
    """Registered partitions that have been materialised; refuse if one's dataset is gone."""
    registered = context.instance.get_dynamic_partitions(raw_batches.name)
    materialised = context.instance.get_materialized_partitions(MDS_SHARDS)
    keys = sorted(key for key in registered if key in materialised)
    if not keys:
        raise Failure("no materialised mds_shards partition to publish yet: materialise some first")
    options = settings.fsspec_options()
    broken = [key for key in keys if not has_dataset(partition_url(settings.out_url, key), options)]
    if broken:
        raise Failure(f"partitions {', '.join(broken)} have no dataset (their last build failed or was removed); "
                      "rebuild them — the published dataset was left as it was")
    return keys


_DECODER_SOURCE = {
    "utf8": "lambda b: b.decode('utf-8')",
    "json": "json.loads",
    "int64": "lambda b: int.from_bytes(b, 'little', signed=True)",
    "float64": "lambda b: struct.unpack('<d', b)[0]",
}


def how_to_load(url: str, selections: list[FieldSelection]) -> str:
    decoders = ",\n".join(f"        {s.name!r}: {_DECODER_SOURCE.get(s.encoding, 'lambda b: b')}"
                          for s in selections)
    return (
        "```python\n"
        "import json, struct\n"
        "from composer.datasets.streaming import StreamingDataset\n\n"
        f"dataset = StreamingDataset(remote={url!r}, local='/tmp/mds-cache', shuffle=False,\n"
        f"    decoders={{\n{decoders}\n    }})\n\n"
        "# or without Composer:\n"
        "from writer import MDSDataset\n"
        f"dataset = MDSDataset({url!r})\n"
        "```"
    )
