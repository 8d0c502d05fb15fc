"""`raw_samples`: one raw batch, loaded and profiled (the profile, not the data, is the output)."""

from dagster import AssetExecutionContext, MetadataValue, Output, asset

from ..core.profile import BatchProfile, profile_records
from ..core.raw_sources import find_batch, read_records
from ..core.wording import plural
from ..partitions import raw_batches
from ..resources import MDSSettings


@asset(
    partitions_def=raw_batches,
    group_name="mds",
    kinds={"python", "json"},
    owners=["team:data-engineering"],
)
def raw_samples(context: AssetExecutionContext, mds_settings: MDSSettings) -> Output[BatchProfile]:
    """A raw batch (a JSONL or Parquet file, or an ImageFolder-style directory), read once and profiled:
    records, bytes, fields with their JSON types and a preview. Unreadable input fails the
    partition naming the batch and line."""
    batch = find_batch(mds_settings.raw_url, context.partition_key, mds_settings.fsspec_options())
    profile = profile_records(batch.name, read_records(batch, mds_settings.fsspec_options()))
    context.log.info(f"batch {batch.name}: {plural(profile.records, 'record')}, fields {list(profile.fields)}")
    return Output(
        profile,
        metadata={
            "dagster/row_count": profile.records,
            "batch": batch.name,
            "batch_url": MetadataValue.path(batch.url),
            "layout": batch.layout,
            "bytes": batch.size,
            "fingerprint": batch.fingerprint,
            "fields": MetadataValue.json(profile.field_types()),
            "preview": MetadataValue.md(_markdown_table(profile.preview)),
        },
    )


def _markdown_table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "_empty batch_"
    columns = list(dict.fromkeys(name for row in rows for name in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(row.get(column, "").replace("|", "\\|") for column in columns) + " |")
    return "\n".join(lines)
