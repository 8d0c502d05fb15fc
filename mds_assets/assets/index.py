"""`mds_index`: the materialised partitions published as one dataset at the output root."""

import functools
import json
import sys

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from writer.lock import LockWait
from writer.manifest import Manifest
from writer.merge import merge_datasets
from writer.reference_index import summary_manifest

from ..core.layout import PARTITIONS_SIDECAR, partition_url, stored_partitions
from ..core.ownership import check_output_may_be_written
from ..core.selection import ENCODINGS, FieldSelection
from ..core.streaming_publish import publish_streaming
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
)
def mds_index(context: AssetExecutionContext, mds_settings: MDSSettings) -> MaterializeResult:
    """One dataset at the output root over every partition dataset under the output's
    `partitions/` folder, in partition-key order, no sample re-encoded.

    Format `composer`: `index.mds` (+ `compression.txt`), shards renumbered and placed at the
    root (hard links on local disks, server-side copies on object stores). Everything is read
    and encoded before the first change; shards under new names are placed while the previous
    dataset stays published, then its index is removed, the shards under reused names are placed
    and the new index is written last. So a failure leaves the previous
    dataset, the new one, or no index (never a wrong one); the next run repairs it.

    Format `streaming`: `index.json` by reference — the partitions' shards listed where they
    are (`partitions/<key>/<generation>/shard.00000.mds`); publishing writes that one file, so a
    failure leaves the previous dataset or the new one."""
    options = mds_settings.fsspec_options()
    check_output_may_be_written(mds_settings.out_url, mds_settings.format, options, adopt=mds_settings.adopt_output)
    keys, superseded = _without_superseded(mds_settings, partitions_to_publish(mds_settings.out_url, options))
    if mds_settings.format == "streaming":
        published = _published_streaming(context, mds_settings, keys)
        _remove_superseded(context, mds_settings, superseded)
        return published
    sidecar = json.dumps({"partitions": keys}, indent=1).encode()
    result = merge_datasets(
        [partition_url(mds_settings.out_url, key) for key in keys],
        mds_settings.out_url,
        options,
        sidecars={PARTITIONS_SIDECAR: sidecar},
        lock_wait=LockWait(PUBLISH_LOCK_WAIT_SECONDS, functools.partial(_say_waiting, context)),
    )
    _remove_superseded(context, mds_settings, superseded)
    placement = "unchanged" if not result.changed else result.placement
    return _published(context, mds_settings, keys, result.manifest, result.changed, placement)


def _published_streaming(context: AssetExecutionContext, settings: MDSSettings, keys: list[str]) -> MaterializeResult:
    wait = LockWait(PUBLISH_LOCK_WAIT_SECONDS, functools.partial(_say_waiting, context))
    result = publish_streaming(settings.out_url, keys, settings.fsspec_options(), wait)
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
            "how_to_load": MetadataValue.md(load_snippet(settings, manifest)),
        }
    )


def load_snippet(settings: MDSSettings, manifest: Manifest) -> str:
    """The load snippet of the published dataset: its format's reader, its own fields."""
    if settings.format == "streaming":
        return how_to_load_streaming(settings.out_url)
    return how_to_load(settings.out_url, published_selections(manifest))


PUBLISH_LOCK_WAIT_SECONDS = 1800.0  # another publish of a large dataset to an object store takes minutes


def _say_waiting(context: AssetExecutionContext, message: str) -> None:
    """In the run's log (the UI) and on stderr (`mds-assets build`, whose run logs are quiet)."""
    context.log.warning(message)
    print(f"mds_index: {message}", file=sys.stderr, flush=True)


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


LOAD_CACHE_ROOT = "/tmp/mds-cache"


def load_cache_folder(url: str) -> str:
    """Composer's `local` for the dataset at `url`: one folder per URL, because Composer 0.10.1
    reuses any file already in `local` — a shared folder would serve one dataset's shards as another's."""
    import hashlib  # here, not at the top: this module's imports are someone else's to edit

    return f"{LOAD_CACHE_ROOT}/{hashlib.sha256(url.encode()).hexdigest()[:16]}"


def published_selections(manifest: Manifest) -> list[FieldSelection]:
    """The published dataset's own fields and encodings, as its manifest records them (the
    settings may have changed since its partitions were built); a field without one stays bytes."""
    encodings = manifest.column_encodings
    by_column = {}
    for field in reversed(ENCODINGS.values()):  # the first field encoding of each column encoding
        by_column[field.column_encoding] = field.name
    return [FieldSelection(name, by_column.get(encodings.get(name, "bytes"), "bytes")) for name in manifest.fields]


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
