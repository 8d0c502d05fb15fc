"""A selected field that no record has (a misspelt name, most likely) would fail every partition
of a run, each after reading its batch. `FieldCheck` finds it once per run, on the previews,
before any partition is written, and names every such field at once.

It costs no read in the common case: the first batch's preview is the one the run reads anyway,
and only when it lacks a selected field are the other batches' previews read, to tell a field
missing from one batch (that partition fails on its own) from one missing from all of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .grouping import RawGroup
from .profile import PREVIEW_ROWS, BatchProfile, reading
from .selection import FieldSelection, SelectionError


class FieldsInNoBatchError(SelectionError):
    """Selected fields that no previewed record of any batch of the run has: the run fails as a whole."""


class FieldCheck:
    """The once-per-run check of the selection against the run's batches (in build order)."""

    def __init__(
        self, selections: list[FieldSelection], batches: Sequence[RawGroup], storage_options: dict[str, Any] | None
    ) -> None:
        self.selections = selections
        self.batches = list(batches)
        self.storage_options = storage_options
        self.done = False

    def check(self, batch: RawGroup, preview: BatchProfile) -> None:
        """On the run's first non-empty preview: raise FieldsInNoBatchError naming every selected
        field that neither it nor any other batch's preview has."""
        if self.done or not preview.records:
            return
        self.done = True
        unseen = [selection.name for selection in self.selections if selection.name not in preview.fields]
        fields = dict.fromkeys(preview.fields)
        for other in self.batches:
            if not unseen:
                return
            if other.partition_key == batch.partition_key:
                continue
            other_fields = self._preview_fields(other)
            fields.update(dict.fromkeys(other_fields))
            unseen = [name for name in unseen if name not in other_fields]
        if unseen:
            named = ", ".join(repr(name) for name in unseen)
            raise FieldsInNoBatchError(
                f"{'field' if len(unseen) == 1 else 'fields'} {named}: in no record of the run's batches (their "
                f"first {PREVIEW_ROWS} records have only: {', '.join(fields)}); is the name misspelt?"
            )

    def _preview_fields(self, batch: RawGroup) -> set[str]:
        """The fields of a batch's preview; none when it cannot be read (its own partition says why)."""
        try:
            with reading(batch, self.storage_options) as batch_reading:
                return set(batch_reading.preview.fields)
        except (OSError, ValueError):
            return set()
