"""The field selection checked once against the previews of every batch to build, before any
partition is written: a field no previewed record has (a misspelt name, most likely) would fail
every partition, each after reading its batch, so it fails the whole build at once instead,
naming every such field."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .profile import PREVIEW_ROWS, reading
from .raw_sources import RawBatch
from .selection import FieldSelection, SelectionError


def check_fields_exist(
    selections: list[FieldSelection], batches: Iterable[RawBatch], storage_options: dict[str, Any] | None
) -> None:
    """Raise a SelectionError naming every selected field that is in no record of any batch's
    preview. Previews are read until every field has been seen (usually the first batch's
    alone); an unreadable or empty batch is passed over: its own partition reports it."""
    unseen = [selection.name for selection in selections]
    fields: dict[str, None] = {}
    previewed: list[str] = []
    for batch in batches:
        if not unseen:
            return
        try:
            with reading(batch, storage_options) as batch_reading:
                preview = batch_reading.preview
        except (OSError, ValueError):
            continue
        if preview.records:
            previewed.append(batch.name)
            fields.update(dict.fromkeys(preview.fields))
            unseen = [name for name in unseen if name not in preview.fields]
    if unseen and previewed:
        named = ", ".join(repr(name) for name in unseen)
        raise SelectionError(
            f"{'field' if len(unseen) == 1 else 'fields'} {named}: in no record of any batch (the first "
            f"{PREVIEW_ROWS} records of {_batches(previewed)} have: {', '.join(fields)}); nothing was written"
        )


def _batches(names: list[str]) -> str:
    shown = ", ".join(names[:3])
    return shown if len(names) <= 3 else f"{shown} and {len(names) - 3} more batches"
