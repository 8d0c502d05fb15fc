"""`mds_index`: the materialised partitions published as one dataset at the output root."""

import json

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from writer.manifest import Manifest
from writer.merge import merge_datasets
from writer.reference_index import summary_manifest

from ..checks import PARTITIONS_SIDECAR
from ..core.layout import partition_url, stored_partitions
from ..core.output_format import refuse_format_switch
from ..core.selection import ENCODINGS, FieldSelection
from ..core.streaming_publish import publish_streaming
from ..core.wording import plural
from ..keys import MDS_SHARDS
from ..resources import MDSSettings


@asset(
    deps=[MDS_SHARDS],
    group_name="mds",
    kinds={"python", "mds"},
    owners=["team:data-engineering"],
    pool="mds_publish",  # with a pool limit of 1 (the default dagster.yaml), publishes never overlap
)
def mds_index(context: AssetExecutionContext, mds_settings: MDSSettings) -> MaterializeResult:
    """One dataset at the output root over every partition dataset under the output's
    `partitions/` folder, in partition-key order, no sample re-encoded.

    Format `composer`: `index.mds` (+ `compression.txt`), shards renumbered and placed at the
    root (hard links on local disks, server-side copies on object stores). Everything is read
    and encoded before the first change; the old index is removed only when a shard name it
    uses must change, and the new one is written last. So a failure leaves the previous
    dataset, the new one, or no index (never a wrong one); the next run repairs it.

    Format `streaming`: `index.json` by reference — the partitions' shards listed where they
    are (`partitions/<key>/<generation>/shard.00000.mds`); publishing writes that one file, so a
    failure leaves the previous dataset or the new one."""
    options = mds_settings.fsspec_options()
    refuse_format_switch(mds_settings.out_url, mds_settings.format, options)
    keys = partitions_to_publish(mds_settings.out_url, options)
    if mds_settings.format == "streaming":
        return _published_streaming(context, mds_settings, keys)
    sidecar = json.dumps({"partitions": keys}, indent=1).encode()
    result = merge_datasets(
        [partition_url(mds_settings.out_url, key) for key in keys],
        mds_settings.out_url,
        options,
        sidecars={PARTITIONS_SIDECAR: sidecar},
    )
    placement = "unchanged" if not result.changed else result.placement
    return _published(context, mds_settings, keys, result.manifest, result.changed, placement)


def _published_streaming(context: AssetExecutionContext, settings: MDSSettings, keys: list[str]) -> MaterializeResult:
    result = publish_streaming(settings.out_url, keys, settings.fsspec_options())
    manifest = summary_manifest(result.index, [s.name for s in settings.selections()])
    placement = "by reference (index.json written)" if result.changed else "unchanged"
    return _published(context, settings, keys, manifest, result.changed, placement)


def _published(
    context: AssetExecutionContext,
    settings: MDSSettings,
    keys: list[str],
    manifest: Manifest,
    changed: bool,
    placement: str,
) -> MaterializeResult:
    stored = sum(shard.stored_bytes for shard in manifest.shards)
    context.log.info(
        f"published {plural(manifest.total_samples, 'sample')} from {plural(len(keys), 'partition')} ({placement})"
    )
    return MaterializeResult(
        metadata={
            "dagster/row_count": manifest.total_samples,
            "path": MetadataValue.path(settings.out_url),
            "format": settings.format,
            "bytes": manifest.total_bytes,
            "stored_bytes": stored,
            "compression_ratio": round(manifest.total_bytes / stored, 3) if stored else 1.0,
            "shards": len(manifest.shards),
            "partitions": MetadataValue.json(keys),
            "changed": changed,
            "placement": placement,
            "how_to_load": MetadataValue.md(load_snippet(settings)),
        }
    )


def load_snippet(settings: MDSSettings) -> str:
    """The load snippet of the settings' format."""
    if settings.format == "streaming":
        return how_to_load_streaming(settings.out_url)
    return how_to_load(settings.out_url, settings.selections())


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
    columns = [ENCODINGS[s.encoding].column for s in selections]
    modules = sorted({module for column in columns for module in column.decoder_imports})
    decoders = "".join(f"    {s.name!r}: {column.decoder_source},\n" for s, column in zip(selections, columns))
    return (
        "```python\n"
        + (f"import {', '.join(modules)}\n" if modules else "")
        + "from composer.datasets.streaming import StreamingDataset\n\n"
        f"decoders = {{\n{decoders}}}\n"
        "# Composer reuses whatever is already in `local` (a folder for this URL only): empty it\n"
        "# after the dataset at this URL is rebuilt, or the old shards are read.\n"
        f"local = {load_cache_folder(url)!r}\n"
        f"dataset = StreamingDataset(remote={url!r}, local=local, shuffle=False, decoders=decoders)\n\n"
        "# or without Composer (each field decoded by the encoding its manifest records):\n"
        "from writer import MDSDataset\n"
        f'dataset = MDSDataset({url!r}, decoders="auto")\n'
        "```"
    )


def how_to_load_streaming(url: str) -> str:
    """A Markdown code block of Python that loads the dataset with mosaicml-streaming.

    Samples come back decoded by the column encodings recorded in the index: no decoders to
    give. `local` is a cache folder of this dataset's own: mosaicml-streaming keeps the index
    and shards it downloads there, reuses an index it finds there, and refuses two datasets
    with different remotes on one `local` at once."""
    return (
        "```python\n"
        "from streaming import StreamingDataset\n\n"
        "# `local` caches the index and shards: a folder for this dataset only (one folder per\n"
        "# remote). mosaicml-streaming reuses an index.json it finds there: empty the folder after\n"
        "# the dataset at this URL is republished, or the previous dataset is read.\n"
        f"local = {load_cache_folder(url)!r}\n"
        f"dataset = StreamingDataset(remote={url!r}, local=local, shuffle=False)\n"
        "sample = dataset[0]  # {field: value}, decoded by the encodings in index.json\n"
        "```"
    )
