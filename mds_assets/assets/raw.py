"""`raw_samples`: one partition's raw files as found by the listing, with a preview of its first records.

Cheap on purpose: the listing's facts (names, sizes, fingerprint) and the first records. The
whole group is read once, by `mds_shards`, which records its full profile.
"""

from typing import Any

from dagster import MetadataValue

from ..core.grouping import RawGroup
from ..core.profile import BatchProfile
from ..keys import RAW_SAMPLES
from .specs import partition_asset_spec

RAW_SAMPLES_SPEC = partition_asset_spec(
    RAW_SAMPLES,
    description="A partition's raw batches (JSONL or Parquet files, or ImageFolder-style directories) as "
    "listed under the raw URL: their names, size, fingerprint and a preview of their first records. "
    "Unreadable input fails the partition naming the batch and line.",
    kinds={"python", "json"},
)


FILES_LISTED = 50  # member names shown on a partition's materialisation


def raw_samples_metadata(group: RawGroup, preview: BatchProfile) -> dict[str, Any]:
    names = [member.name for member in group.members]
    return {
        "batch": group.name,
        "batch_url": MetadataValue.path(group.url),
        "files": len(names),
        "file_names": MetadataValue.json(
            names[:FILES_LISTED] + ([f"... {len(names) - FILES_LISTED} more"] if len(names) > FILES_LISTED else [])
        ),
        "layout": group.layout,
        "bytes": group.size,
        "fingerprint": group.fingerprint,
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
