"""`selected_samples`: the field selection resolved against a batch's profile — the write plan."""

from dataclasses import dataclass

from dagster import AssetExecutionContext, MetadataValue, Output, asset

from ..core.profile import BatchProfile, check_selection
from ..core.selection import FieldSelection
from ..partitions import raw_batches
from ..resources import MDSSettings


@dataclass(frozen=True)
class SelectionPlan:
    """What `mds_shards` writes for one batch: which fields, encoded how."""

    batch: str
    fields: tuple[FieldSelection, ...]
    records: int

    @property
    def field_names(self) -> list[str]:
        return [selection.name for selection in self.fields]


@asset(
    partitions_def=raw_batches,
    group_name="mds",
    kinds={"python"},
    owners=["team:data-engineering"],
)
def selected_samples(
    context: AssetExecutionContext, mds_settings: MDSSettings, raw_samples: BatchProfile
) -> Output[SelectionPlan]:
    """The configured fields (`name[:encoding]`) checked against the batch's profile: a field
    missing from a record, or of a type its encoding cannot take, fails the partition naming
    batch, line and field — before any shard is written."""
    selections = mds_settings.selections()
    check_selection(selections, raw_samples)
    plan = SelectionPlan(raw_samples.batch, tuple(selections), raw_samples.records)
    return Output(
        plan,
        metadata={
            "dagster/row_count": plan.records,
            "fields": MetadataValue.json({s.name: s.encoding for s in selections}),
            "dropped_fields": MetadataValue.json(sorted(set(raw_samples.fields) - set(plan.field_names))),
        },
    )
