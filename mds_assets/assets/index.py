"""`mds_index`: the materialised partitions published as one dataset at the output root."""

import json

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from writer.merge import merge_datasets

from ..checks import PARTITIONS_SIDECAR
from ..core.layout import partition_url, stored_partitions
from ..core.selection import FieldSelection
from ..core.superseded import RegroupingNotBuilt, partitions_kept, remove_partitions
from ..core.wording import plural
from ..keys import MDS_SHARDS
from ..partitions import RAW_BATCHES
from ..resources import MDSSettings


@asset(
    deps=[MDS_SHARDS],
    group_name="mds",
    kinds={"python", "mds"},
    owners=["team:data-engineering"],
    pool="mds_publish",  # with a pool limit of 1 (the default dagster.yaml), publishes never overlap
)
def mds_index(context: AssetExecutionContext, mds_settings: MDSSettings) -> MaterializeResult:
    """One dataset at the output root: `index.mds` (+ `compression.txt`) over every partition
    dataset under the output's `partitions/` folder, shards renumbered in partition-key order,
    no sample re-encoded (hard links on local disks, server-side copies on object stores).
    Everything is read and encoded before the first change; the old index is removed only when
    a shard name it uses must change, and the new one is written last. So a failure leaves the
    previous dataset, the new one, or no index (never a wrong one); the next run repairs it."""
    options = mds_settings.fsspec_options()
    keys, superseded = _without_superseded(mds_settings, partitions_to_publish(mds_settings.out_url, options))
    sidecar = json.dumps({"partitions": keys}, indent=1).encode()
    result = merge_datasets(
        [partition_url(mds_settings.out_url, key) for key in keys],
        mds_settings.out_url,
        options,
        sidecars={PARTITIONS_SIDECAR: sidecar},
    )
    _remove_superseded(context, mds_settings, superseded)
    manifest = result.manifest
    stored = sum(shard.stored_bytes for shard in manifest.shards)
    context.log.info(
        f"published {plural(manifest.total_samples, 'sample')} from {plural(len(keys), 'partition')} "
        f"({'unchanged' if not result.changed else result.placement})"
    )
    return MaterializeResult(
        metadata={
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
        }
    )


def partitions_to_publish(out_url: str, storage_options: dict | None) -> list[str]:
    """Every partition dataset under `<out>/partitions/` — storage, not the Dagster instance, is
    the one record of what is built (another DAGSTER_HOME, or a build killed between writing a
    partition and recording it, must not drop a batch). A partition directory without a
    dataset blocks publishing, named, so no batch is ever left out silently."""
    complete, incomplete = stored_partitions(out_url, storage_options)
    if incomplete:
        raise Failure(
            f"partitions {', '.join(incomplete)} have no complete dataset (a build was interrupted, "
            "or files were removed): rebuild them, or delete their directories under "
            f"{out_url.rstrip('/')}/partitions/ to drop them — nothing was published"
        )
    if not complete:
        raise Failure("no partition dataset to publish yet: materialise some mds_shards partitions first")
    return complete


def _without_superseded(settings: MDSSettings, keys: list[str]) -> tuple[list[str], list[str]]:
    """The partitions to publish, and those a regrouping replaced (`core.superseded`)."""
    try:
        return partitions_kept(settings.out_url, settings.raw_url, keys, settings.fsspec_options())
    except RegroupingNotBuilt as error:
        raise Failure(f"{error} — nothing was published") from None


def _remove_superseded(context: AssetExecutionContext, settings: MDSSettings, keys: list[str]) -> None:
    """Once the dataset without them is published: their folders and their partition keys."""
    remove_partitions(settings.out_url, keys, settings.fsspec_options())
    for key in keys:
        context.instance.delete_dynamic_partition(RAW_BATCHES, key)
    if keys:
        context.log.info(f"removed {plural(len(keys), 'partition')} replaced by a regrouping: {', '.join(keys)}")


_DECODER_SOURCE = {  # encoding -> (decoder source, module it needs); unlisted encodings stay bytes
    "utf8": ("lambda b: b.decode('utf-8')", None),
    "json": ("json.loads", "json"),
    "int64": ("lambda b: int.from_bytes(b, 'little', signed=True)", None),
    "float64": ("lambda b: struct.unpack('<d', b)[0]", "struct"),
}
_RAW_BYTES = ("lambda b: b", None)
LOAD_CACHE_ROOT = "/tmp/mds-cache"


def load_cache_folder(url: str) -> str:
    """Composer's `local` for the dataset at `url`: one folder per URL, because Composer 0.10.1
    reuses any file already in `local` — a shared folder would serve one dataset's shards as another's."""
    import hashlib  # here, not at the top: this module's imports are someone else's to edit

    return f"{LOAD_CACHE_ROOT}/{hashlib.sha256(url.encode()).hexdigest()[:16]}"


def how_to_load(url: str, selections: list[FieldSelection]) -> str:
    """A Markdown code block of Python that loads the dataset with Composer or MDSDataset, decoded.

    The cache folder is per URL, not per build: after a rebuild at the same URL the snippet
    says to empty it (a content hash in the name would need the published manifest here, and
    would leave every old build's copy behind in /tmp)."""
    sources = [_DECODER_SOURCE.get(s.encoding, _RAW_BYTES) for s in selections]
    modules = sorted({module for _, module in sources if module})
    decoders = "".join(f"    {s.name!r}: {source},\n" for s, (source, _) in zip(selections, sources))
    return (
        "```python\n"
        + (f"import {', '.join(modules)}\n" if modules else "")
        + "from composer.datasets.streaming import StreamingDataset\n\n"
        f"decoders = {{\n{decoders}}}\n"
        "# Composer reuses whatever is already in `local` (a folder for this URL only): empty it\n"
        "# after the dataset at this URL is rebuilt, or the old shards are read.\n"
        f"local = {load_cache_folder(url)!r}\n"
        f"dataset = StreamingDataset(remote={url!r}, local=local, shuffle=False, decoders=decoders)\n\n"
        "# or without Composer:\n"
        "from writer import MDSDataset\n"
        f"dataset = MDSDataset({url!r}, decoders=decoders)\n"
        "```"
    )
