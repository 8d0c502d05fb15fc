"""Everything that can be checked about a dataset, as a report rather than a first exception.

Used by `mds verify` and by the Dagster index check: both want every problem listed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from . import format as mds
from .column_encodings import decoders_for
from .manifest import MANIFEST_NAME, Manifest, ShardRecord, checksum
from .reader import MDSDataset
from .secrets import redact
from .storage import Storage


@dataclass
class Report:
    """What was checked and what was wrong; `ok` when nothing was."""

    url: str
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        lines = [f"{'OK' if self.ok else 'FAILED'}: {self.url}"]
        lines += [f"  checked: {line}" for line in self.checked]
        lines += [f"  note: {line}" for line in self.notes]
        lines += [f"  problem: {line}" for line in self.problems]
        return "\n".join(lines)


def verify(url: str, storage_options: dict[str, Any] | None = None, progress: bool = False) -> Report:
    """Open the dataset and check index arithmetic, every shard, every record header and the manifest."""
    report = Report(redact(url))
    try:
        dataset = MDSDataset(url, storage_options=storage_options)
    except (OSError, ValueError) as error:
        report.problems.append(str(error))
        return report
    if dataset.format == "streaming":
        from .mdsv2_reader import StreamingFormatDataset
        from .mdsv2_verify import verify_streaming

        assert isinstance(dataset, StreamingFormatDataset)
        return verify_streaming(dataset, report, progress)
    report.checked.append(
        f"index: {dataset.index.num_shards} shards, {len(dataset)} samples, "
        f"{dataset.index.total_bytes} bytes, fields {', '.join(dataset.fields)}"
    )
    if dataset.repaired_sizes:
        report.notes.append(
            "per-sample sizes were stored wrapped (negative) by the original writer; "
            "read as unsigned and confirmed against the shard byte counts"
        )
    _check_size_sums(dataset, report)
    _check_shard_files(dataset, report)
    manifest = _load_manifest(dataset, report)
    shards = tqdm(range(dataset.index.num_shards), desc="verifying", unit="shard", disable=not progress)
    for shard_number in shards:
        _check_shard(dataset, shard_number, manifest, report)
    if manifest is None:
        report.notes.append("no manifest (written by another writer?): checksums not checked, values not decoded")
    else:
        report.checked.append(f"manifest: {len(manifest.shards)} shards with {manifest.checksum_algorithm} checksums")
        if manifest.column_encodings:
            report.checked.append(f"every value of {', '.join(manifest.column_encodings)} by its recorded encoding")
        else:
            report.notes.append("no column encodings recorded: values not decoded")
    return report


def _check_size_sums(dataset: MDSDataset, report: Report) -> None:
    if dataset.index.size_format == mds.CONSTANT_SIZE_FORMAT:
        return  # decode_index has checked size * samples == bytes for every shard, without iterating
    start = 0
    for shard_number, (count, shard_bytes) in enumerate(
        zip(dataset.index.samples_per_shard, dataset.index.bytes_per_shard)
    ):
        total = sum(dataset.sample_sizes[start : start + count])
        if total != shard_bytes:
            report.problems.append(
                f"index: sample sizes of shard {shard_number} add up to {total}, its byte count is {shard_bytes}"
            )
        start += count


def _check_shard_files(dataset: MDSDataset, report: Report) -> None:
    expected = {dataset.shard_file(number) for number in range(dataset.index.num_shards)}
    present = set(dataset.storage.list_names())
    for name in sorted(expected - present):
        report.problems.append(f"{dataset.storage.describe(name)}: missing")
    extra = sorted(name for name in present - expected if mds.is_shard_file(name))
    if extra:
        report.notes.append(f"shard files the index does not use: {', '.join(extra)}")


def _load_manifest(dataset: MDSDataset, report: Report) -> Manifest | None:
    try:
        manifest = dataset.manifest()
    except ValueError as error:
        report.problems.append(str(error))
        return None
    if manifest is not None and len(manifest.shards) != dataset.index.num_shards:
        report.problems.append(f"manifest lists {len(manifest.shards)} shards, the index {dataset.index.num_shards}")
        return None
    if manifest is not None and manifest.fields != dataset.fields:
        report.problems.append(
            f"manifest fields {list(manifest.fields)} differ from the index's {list(dataset.fields)}"
        )
    return manifest


def _check_shard(dataset: MDSDataset, shard_number: int, manifest: Manifest | None, report: Report) -> None:
    name = dataset.shard_file(shard_number)
    where = dataset.storage.describe(name)
    if _stored_size_is_wrong(dataset, shard_number, manifest, report):
        return  # never read: a shard of the wrong size may be anything (a sparse file of gigabytes)
    try:
        stored = dataset.storage.read(name)
    except FileNotFoundError:
        return  # already reported as missing
    except OSError as error:  # e.g. not a regular file
        report.problems.append(str(error))
        return
    if manifest is not None:
        _check_against_manifest(dataset, shard_number, stored, manifest, report)
    try:
        bad, undecodable = _bad_records(dataset, shard_number, stored, manifest)
    except (OSError, ValueError) as error:
        report.problems.append(str(error))
        return
    if bad:
        report.problems.append(
            f"{where}: {len(bad)} record(s) whose size header disagrees with the index, first: sample {bad[0]}"
        )
    if undecodable:
        more = f" ({len(undecodable) - 1} more in this shard)" if len(undecodable) > 1 else ""
        report.problems.append(undecodable[0] + more)


def _stored_size_is_wrong(dataset: MDSDataset, shard_number: int, manifest: Manifest | None, report: Report) -> bool:
    """The shard file's size (one stat) against the manifest's stored size, or, uncompressed,
    the index's byte count: what verify then reads is at most what they say."""
    name = dataset.shard_file(shard_number)
    try:
        dataset.storage.refuse_unless_regular(name)
        size = dataset.storage.size(name)
    except FileNotFoundError:
        return True  # already reported as missing
    except OSError as error:
        report.problems.append(str(error))
        return True
    if manifest is not None and shard_number < len(manifest.shards):
        expected: int | None = manifest.shards[shard_number].stored_bytes
    else:
        expected = dataset.index.bytes_per_shard[shard_number] if dataset.compression.is_none else None
    if expected is None or size == expected:
        return False
    report.problems.append(f"{dataset.storage.describe(name)}: {size} bytes stored, expected {expected}; not read")
    return True


def _bad_records(
    dataset: MDSDataset, shard_number: int, stored: bytes, manifest: Manifest | None
) -> tuple[list[int], list[str]]:
    """(samples whose size header is wrong, a message per sample a value of which does not decode
    as the encoding its manifest records)."""
    encodings = dict(manifest.column_encodings) if manifest is not None else {}
    decoders = decoders_for(encodings)
    bad: list[int] = []
    undecodable: list[str] = []
    records: Iterable[tuple[memoryview, int]] = dataset.records_of_shard(shard_number, stored)
    for record, sample_number in records:
        where = f"{dataset.storage.describe(dataset.shard_file(shard_number))}, sample {sample_number}"
        try:
            sample = mds.decode_record(record, dataset.fields, where)
        except ValueError:
            bad.append(sample_number)
            continue
        for name, decode in decoders.items():
            try:
                decode(sample[name])
            except Exception as error:
                detail = " ".join(str(error).split()) or type(error).__name__
                undecodable.append(f"{where}, field {name!r}: not decodable as {encodings[name]} ({detail})")
                break
    return bad, undecodable


def _check_against_manifest(
    dataset: MDSDataset, shard_number: int, stored: bytes, manifest: Manifest, report: Report
) -> None:
    entry = manifest.shards[shard_number]
    name = dataset.shard_file(shard_number)
    where = dataset.storage.describe(name)
    if (
        entry.file != name
        or entry.samples != dataset.index.samples_per_shard[shard_number]
        or entry.bytes != dataset.index.bytes_per_shard[shard_number]
    ):
        report.problems.append(f"{where}: manifest entry {entry} disagrees with the index")
        return
    if len(stored) != entry.stored_bytes:
        report.problems.append(f"{where}: {len(stored)} bytes stored, manifest says {entry.stored_bytes}")
    elif checksum(stored) != entry.checksum:
        report.problems.append(f"{where}: checksum {checksum(stored)} differs from the manifest's {entry.checksum}")


def read_manifest(storage: Storage) -> Manifest:
    """The dataset's manifest; a dataset without one has no checksums to verify against."""
    if not storage.exists(MANIFEST_NAME):
        raise ValueError(f"{storage.describe(MANIFEST_NAME)}: missing, so the shards have no checksums to verify")
    return Manifest.from_json(storage.read(MANIFEST_NAME), storage.describe(MANIFEST_NAME))


READ_BACK_THREADS = 2  # shards read back at once: reads and CRC-32 release the GIL; each holds one shard


def damaged_shards(storage: Storage, manifest: Manifest, names: Collection[str] | None = None) -> dict[str, str]:
    """`{shard file: problem}` for each shard (of `names`; default every one) whose stored bytes
    are missing or differ from the size and CRC-32 the manifest gives it. Each shard is read
    once, READ_BACK_THREADS at a time (one in memory per thread); nothing is decoded (that is
    `verify`'s longer job)."""
    shards = [shard for shard in manifest.shards if names is None or shard.file in names]
    with ThreadPoolExecutor(max_workers=max(1, min(READ_BACK_THREADS, len(shards)))) as pool:
        found = pool.map(lambda shard: _shard_problem(storage, shard), shards)
        return {shard.file: problem for shard, problem in zip(shards, found) if problem is not None}


def _shard_problem(storage: Storage, shard: ShardRecord) -> str | None:
    where = storage.describe(shard.file)
    try:
        stored = storage.read(shard.file)
    except FileNotFoundError:
        return f"{where}: missing"
    if len(stored) != shard.stored_bytes:
        return f"{where}: {len(stored)} bytes stored, the manifest says {shard.stored_bytes}"
    if checksum(stored) != shard.checksum:
        return f"{where}: checksum {checksum(stored)} differs from the manifest's {shard.checksum} (damaged)"
    return None
