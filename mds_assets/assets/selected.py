"""`selected_samples`: the field selection — the write plan — checked against the batch's preview.

A selection that cannot work on the first records fails here, before any shard is written;
one that fails further into the batch fails `mds_shards` naming the line, and its staged
partition is discarded (nothing is published).
"""

from dagster import MetadataValue

from ..core.profile import BatchProfile, check_selection
from ..core.selection import FieldSelection
from ..keys import RAW_SAMPLES, SELECTED_SAMPLES
from .specs import partition_asset_spec

SELECTED_SAMPLES_SPEC = partition_asset_spec(
    SELECTED_SAMPLES,
    deps=[RAW_SAMPLES],
    description="The configured fields (`name[:encoding]`) checked against the first records of the batch: a "
    "field missing from a record, or of a type its encoding cannot take, fails the partition naming batch, "
    "line and field, before any shard is written.",
    kinds={"python"},
)


def checked_plan_metadata(selections: list[FieldSelection], preview: BatchProfile) -> dict:
    """Check the plan against the preview (raises naming batch, line and field); its metadata."""
    check_selection(selections, preview)
    names = {selection.name for selection in selections}
    return {
        "fields": MetadataValue.json({s.name: s.encoding for s in selections}),
        "dropped_fields": MetadataValue.json(sorted(set(preview.fields) - names)),
    }
