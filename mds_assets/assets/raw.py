"""`raw_samples`: one raw batch as found by the listing, with a preview of its first records.

Cheap on purpose: the listing's facts (name, size, fingerprint) and the first records. The
whole batch is read once, by `mds_shards`, which records its full profile.
"""

from dagster import MetadataValue

from ..core.profile import BatchProfile
from ..core.raw_sources import RawBatch
from ..keys import RAW_SAMPLES
from .specs import partition_asset_spec

RAW_SAMPLES_SPEC = partition_asset_spec(
    RAW_SAMPLES,
    description="A raw batch (a JSONL or Parquet file, or an ImageFolder-style directory) as listed under "
    "the raw URL: its size, fingerprint and a preview of its first records. Unreadable input fails the "
    "partition naming the batch and line.",
    kinds={"python", "json"},
)


def raw_samples_metadata(batch: RawBatch, preview: BatchProfile) -> dict:
    return {
        "batch": batch.name,
        "batch_url": MetadataValue.path(batch.url),
        "layout": batch.layout,
        "bytes": batch.size,
        "fingerprint": batch.fingerprint,
        "preview_fields": MetadataValue.json(preview.field_types()),
        "preview": MetadataValue.md(_markdown_table(preview.preview)),
    }


def _markdown_table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "_empty batch_"
    columns = list(dict.fromkeys(name for row in rows for name in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(row.get(column, "").replace("|", "\\|") for column in columns) + " |")
    return "\n".join(lines)
