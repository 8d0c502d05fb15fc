"""A batch's profile: records, fields with their JSON types, where each type or gap first occurs.

The profile is small whatever the batch's size, and it is what `selected_samples` checks a
field selection against — so a selection that cannot work fails before any shard is written,
naming the line at fault.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .selection import ENCODINGS, FieldSelection, SelectionError, json_type

PREVIEW_ROWS = 5
PREVIEW_WIDTH = 60


@dataclass
class FieldProfile:
    present: int = 0
    types: dict[str, int] = field(default_factory=dict)
    first_line_of_type: dict[str, int] = field(default_factory=dict)
    first_missing_line: int | None = None


@dataclass
class BatchProfile:
    batch: str
    records: int = 0
    fields: dict[str, FieldProfile] = field(default_factory=dict)
    preview: list[dict[str, str]] = field(default_factory=list)

    def field_types(self) -> dict[str, str]:
        return {name: ", ".join(sorted(profile.types)) for name, profile in self.fields.items()}


def profile_records(batch: str, records: Iterable[tuple[int, dict]]) -> BatchProfile:
    profile = BatchProfile(batch)
    first_line = None
    for line, record in records:
        first_line = first_line or line
        profile.records += 1
        for name, value in record.items():
            _observe(profile, name, value, line, first_line)
        if len(record) < len(profile.fields):
            for name, field_profile in profile.fields.items():
                if name not in record and field_profile.first_missing_line is None:
                    field_profile.first_missing_line = line
        if len(profile.preview) < PREVIEW_ROWS:
            profile.preview.append({name: _preview(value) for name, value in record.items()})
    return profile


def _observe(profile: BatchProfile, name: str, value: Any, line: int, first_line: int) -> None:
    field_profile = profile.fields.get(name)
    if field_profile is None:
        field_profile = profile.fields[name] = FieldProfile()
        if line != first_line:
            field_profile.first_missing_line = first_line  # absent from every record before this one
    field_profile.present += 1
    kind = json_type(value)
    field_profile.types[kind] = field_profile.types.get(kind, 0) + 1
    field_profile.first_line_of_type.setdefault(kind, line)


def _preview(value: Any) -> str:
    text = f"<{len(value)} bytes>" if isinstance(value, bytes) else repr(value)
    return text if len(text) <= PREVIEW_WIDTH else text[: PREVIEW_WIDTH - 3] + "..."


def check_selection(selections: list[FieldSelection], profile: BatchProfile) -> None:
    """Refuse a selection the batch cannot satisfy, naming batch, line and field. An empty batch
    (no file, no line but blank ones) satisfies any selection: it becomes an empty partition."""
    if profile.records == 0:
        return
    batch = profile.batch
    for selection in selections:
        field_profile = profile.fields.get(selection.name)
        if field_profile is None:
            raise SelectionError(
                f"batch {batch}, field {selection.name!r}: in no record (fields: {', '.join(profile.fields) or 'none'})"
            )
        if field_profile.first_missing_line is not None:
            raise SelectionError(
                f"batch {batch}, line {field_profile.first_missing_line}, field {selection.name!r}: missing"
            )
        accepts = ENCODINGS[selection.encoding].accepts
        wrong = {kind: line for kind, line in field_profile.first_line_of_type.items() if kind not in accepts}
        if wrong:
            kind, line = min(wrong.items(), key=lambda item: item[1])
            raise SelectionError(
                f"batch {batch}, line {line}, field {selection.name!r}: a JSON {kind} cannot "
                f"be encoded as {selection.encoding} (accepts {', '.join(sorted(accepts))})"
            )
