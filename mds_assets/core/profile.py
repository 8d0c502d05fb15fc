"""A batch's profile: records, fields with their JSON types, where each type or gap first occurs.

A profile is built while the batch streams past (`profiled`), so the full profile costs no
second read: `mds_shards` records it from the very pass that writes the shards. Its first
records are the preview (`BatchReading.preview`) that `raw_samples` shows and `selected_samples`
checks the field selection against, before any shard is written. The profile is small whatever
the batch's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Any

from .grouping import RawGroup, place_of, read_group
from .selection import ENCODINGS, FieldSelection, SelectionError, json_type

PREVIEW_ROWS = 5
PREVIEW_WIDTH = 60


@dataclass
class FieldProfile:
    first_line_of_type: dict[str, int] = field(default_factory=dict)
    first_missing_line: int | None = None


@dataclass
class BatchProfile:
    batch: str
    records: int = 0
    fields: dict[str, FieldProfile] = field(default_factory=dict)
    preview: list[dict[str, str]] = field(default_factory=list)
    first_line: int | None = None
    # (field, Python type) pairs seen so far: a record made only of known pairs, with every known
    # field present, is counted without looking at its values one by one in Python.
    _seen: set[tuple[str, type]] = field(default_factory=set, repr=False)

    def field_types(self) -> dict[str, str]:
        return {name: ", ".join(sorted(profile.first_line_of_type)) for name, profile in self.fields.items()}

    def observe(self, line: int, record: dict[str, Any]) -> None:
        self.records += 1
        if len(self.preview) < PREVIEW_ROWS:
            self.first_line = self.first_line or line
            self.preview.append({name: _preview(value) for name, value in record.items()})
        if len(record) == len(self.fields) and self._seen.issuperset(zip(record, map(type, record.values()))):
            return  # the common case: the same fields, of types already seen (checked in C)
        self._observe_slowly(line, record)

    def _observe_slowly(self, line: int, record: dict[str, Any]) -> None:
        for name, value in record.items():
            field_profile = self.fields.get(name)
            if field_profile is None:
                field_profile = self.fields[name] = FieldProfile()
                if line != self.first_line:
                    field_profile.first_missing_line = self.first_line  # absent from every record before
            field_profile.first_line_of_type.setdefault(json_type(value), line)
            self._seen.add((name, type(value)))
        for name, field_profile in self.fields.items():
            if name not in record and field_profile.first_missing_line is None:
                field_profile.first_missing_line = line


def profiled(records: Iterable[tuple[int, dict]], profile: BatchProfile) -> Iterator[tuple[int, dict]]:
    """The records, unchanged, observed by `profile` as they pass."""
    observe = profile.observe
    for line, record in records:
        observe(line, record)
        yield line, record


def profile_records(batch: str, records: Iterable[tuple[int, dict]]) -> BatchProfile:
    profile = BatchProfile(batch)
    for _ in profiled(records, profile):
        pass
    return profile


@dataclass
class BatchReading:
    """One streaming read of a batch, its first records already read: `preview` profiles them,
    and `records()` yields every record, those first ones included, without reading them again."""

    preview: BatchProfile
    head: list[tuple[int, dict]]
    rest: Iterator[tuple[int, dict]]

    def records(self) -> Iterator[tuple[int, dict]]:
        return chain(self.head, self.rest)


@contextmanager
def reading(group: RawGroup, storage_options: dict[str, Any] | None) -> Iterator[BatchReading]:
    """Open the partition's files and read its first PREVIEW_ROWS records; the file being read
    is closed on leaving, however much of the group was read (a preview alone reads a few
    kilobytes)."""
    records = read_group(group, storage_options)
    try:
        head: list[tuple[int, dict]] = list(islice(records, PREVIEW_ROWS))
        yield BatchReading(profile_records(group.name, head), head, records)
    finally:
        records.close()


def _preview(value: Any) -> str:
    text = f"<{len(value)} bytes>" if isinstance(value, bytes) else repr(value)
    return text if len(text) <= PREVIEW_WIDTH else text[: PREVIEW_WIDTH - 3] + "..."


def check_selection(selections: list[FieldSelection], profile: BatchProfile) -> None:
    """Refuse a selection the records profiled cannot satisfy, naming batch, line and field, every
    problem at once. An empty batch (no file, no line but blank ones) satisfies any selection: it
    becomes an empty partition."""
    if profile.records == 0:
        return
    batch = profile.batch
    absent = [selection.name for selection in selections if selection.name not in profile.fields]
    problems = []
    if absent:
        named = ", ".join(repr(name) for name in absent)
        problems.append(
            f"batch {batch}, {'field' if len(absent) == 1 else 'fields'} {named}: in no record "
            f"(fields: {', '.join(profile.fields) or 'none'})"
        )
    for selection in selections:
        field_profile = profile.fields.get(selection.name)
        if field_profile is None:
            continue
        if field_profile.first_missing_line is not None:
            problems.append(f"{place_of(batch, field_profile.first_missing_line)}, field {selection.name!r}: missing")
            continue
        accepts = ENCODINGS[selection.encoding].accepts
        wrong = {kind: line for kind, line in field_profile.first_line_of_type.items() if kind not in accepts}
        if wrong:
            kind, line = min(wrong.items(), key=lambda item: item[1])
            problems.append(
                f"{place_of(batch, line)}, field {selection.name!r}: a JSON {kind} cannot "
                f"be encoded as {selection.encoding} (accepts {', '.join(sorted(accepts))})"
            )
    if problems:
        raise SelectionError("; ".join(problems))
