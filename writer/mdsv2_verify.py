"""`mds verify` for MDS v2: every shard against its index entry, as a report of every problem.

Per shard: the stored file's size and every hash the index records for it (S's hashes: sha1,
sha256, xxh3_64, ...), the same for the uncompressed bytes, the sample count, the offsets, the
config the file carries against the index's columns, and every sample's column sizes.
"""

from __future__ import annotations

from tqdm.auto import tqdm

from . import mdsv2_format as v2
from .mdsv2_hashes import HASHES, hex_digest
from .mdsv2_reader import StreamingFormatDataset
from .verify import Report


def verify_streaming(dataset: StreamingFormatDataset, report: Report, progress: bool = False) -> Report:
    index = dataset.streaming_index
    columns = ", ".join(f"{name}:{encoding}" for name, encoding in dataset.columns.items())
    report.checked.append(
        f"index.json: {len(index.shards)} shards, {len(dataset)} samples, "
        f"{sum(shard.raw_data.bytes for shard in index.shards)} bytes, columns {columns or '(none)'}"
    )
    hashed: set[str] = set()
    unknown: set[str] = set()
    for shard_number in tqdm(range(len(index.shards)), desc="verifying", unit="shard", disable=not progress):
        _check_shard(dataset, shard_number, report, hashed, unknown)
    _note_unused_shards(dataset, report)
    if hashed:
        report.checked.append(f"hashes: {', '.join(sorted(hashed))} of every shard file")
    else:
        report.notes.append("the index records no hashes: shard contents checked by structure only")
    if unknown:
        report.notes.append(f"hashes this reader does not compute, not checked: {', '.join(sorted(unknown))}")
    return report


def _check_shard(
    dataset: StreamingFormatDataset, shard_number: int, report: Report, hashed: set[str], unknown: set[str]
) -> None:
    entry = dataset.streaming_index.shards[shard_number]
    where = dataset.storage.describe(entry.stored.basename)
    try:
        stored = dataset.storage.read(entry.stored.basename)
    except FileNotFoundError:
        report.problems.append(f"{where}: missing")
        return
    files = [(entry.stored, stored)]
    try:
        raw = dataset.read_raw_shard(shard_number, stored)
    except ValueError as error:  # a FormatError, or a compression this reader cannot undo
        report.problems.append(str(error))
        _check_hashes(files, dataset, report, hashed, unknown)
        return
    if entry.zip_data is not None:
        files.append((entry.raw_data, raw))
    if not _check_hashes(files, dataset, report, hashed, unknown):
        return
    try:
        offsets = v2.sample_offsets(raw, entry, where)
        config = v2.shard_config_of(raw, offsets, where)
        _check_config(config, entry, where)
        view = memoryview(raw)
        for position in range(entry.samples):
            v2.split_sample(view[offsets[position] : offsets[position + 1]], entry.column_sizes, where)
    except v2.FormatError as error:
        report.problems.append(str(error))


def _check_hashes(
    files: list[tuple[v2.FileInfo, bytes]],
    dataset: StreamingFormatDataset,
    report: Report,
    hashed: set[str],
    unknown: set[str],
) -> bool:
    sound = True
    for info, data in files:
        for algorithm, expected in sorted(info.hashes.items()):
            if algorithm not in HASHES:
                unknown.add(algorithm)
                continue
            hashed.add(algorithm)
            actual = hex_digest(algorithm, data)
            if actual != expected:
                sound = False
                what = "" if info is files[0][0] else " (uncompressed)"
                report.problems.append(
                    f"{dataset.storage.describe(info.basename)}{what}: {algorithm} {actual} differs from the "
                    f"index's {expected}"
                )
    return sound


def _check_config(config: dict[str, object], entry: v2.ShardEntry, where: str) -> None:
    expected = {
        "column_names": list(entry.column_names),
        "column_encodings": list(entry.column_encodings),
        "column_sizes": list(entry.column_sizes),
    }
    for key, value in expected.items():
        if config.get(key) != value:
            raise v2.FormatError(f"{where}: its config's {key} {config.get(key)!r} differ from the index's {value!r}")


def _note_unused_shards(dataset: StreamingFormatDataset, report: Report) -> None:
    used = {shard.stored.basename for shard in dataset.streaming_index.shards}
    extra = sorted(name for name in dataset.storage.list_names() if v2.is_shard_file(name) and name not in used)
    if extra:
        report.notes.append(f"shard files the index does not use: {', '.join(extra)}")
