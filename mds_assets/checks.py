"""Asset checks, each a short function over `writer.reader`: they judge what is in storage.

`shard_size` (on each partition of `mds_shards`) lives here whole: its spec, its evaluation,
how a run records it and fails on a blocking ERROR, the "Execute all" run over every
partition, and the op of the `check_partition` job. `index_consistency` and `samples_decode`
check the published dataset."""

import json
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Failure,
    MetadataValue,
    OpExecutionContext,
    PreviewWarning,
    asset_check,
    op,
)

from writer import MDSDataset
from writer.manifest import MANIFEST_NAME, Manifest
from writer.mdsv2_reader import StreamingFormatDataset
from writer.storage import Storage

from .core.layout import PARTITIONS_SIDECAR, partition_url, stored_partitions
from .core.selection import decoders_for
from .core.shard_audit import Audit, audit_shards
from .core.stamps import CONCURRENT_READS
from .core.wording import plural
from .dagster_internals import on_latest_materialization
from .keys import INDEX_CONSISTENCY, MDS_INDEX, MDS_SHARDS, SAMPLES_DECODE, SHARD_SIZE
from .partitions import RAW_BATCHES, raw_batches
from .resources import MDSSettings
from .streaming_checks import streaming_index_consistency, streaming_shard_size_result

MAX_SHARDS_DECODED = 200


def why_it_failed(evaluation: AssetCheckEvaluation) -> str | None:
    """The reason a check of this location gives for its result: its description, else its
    `problem` metadata (a check that could not read what it checks)."""
    problem = evaluation.metadata.get("problem")
    return evaluation.description or (str(problem.value) if problem is not None else None)


def shard_size_result(url: str, shard_size_limit: int, storage_options: dict[str, Any] | None) -> AssetCheckResult:
    """Every shard at or under the limit, and as long as the index says.

    A shard over the limit that holds one sample is that sample being oversized (WARN, named);
    anything else over the limit, or a file whose length disagrees with the index, is an ERROR.
    """
    try:
        dataset = MDSDataset(url, storage_options=storage_options)
        manifest = dataset.manifest()
    except (OSError, ValueError) as error:
        return AssetCheckResult(
            check_name=SHARD_SIZE, passed=False, asset_key=MDS_SHARDS, metadata={"problem": str(error)}
        )
    limit = shard_size_limit  # the configured limit: a partition built under an older, larger one is flagged
    errors, warnings = [], []
    if manifest is not None and len(manifest.shards) != dataset.index.num_shards:
        errors.append(
            f"the manifest lists {plural(len(manifest.shards), 'shard')}, the index "
            f"{dataset.index.num_shards}: sizes checked against the index alone"
        )
        manifest = None
    first_sample = 0
    sizes = dataset.storage.sizes()  # one listing, not a request per shard
    for number, (samples, size) in enumerate(zip(dataset.index.samples_per_shard, dataset.index.bytes_per_shard)):
        name = dataset.shard_file(number)
        stored = sizes.get(name)
        expected = manifest.shards[number].stored_bytes if manifest else (size if dataset.compression.is_none else None)
        if stored is None:
            errors.append(f"{name}: missing")
        elif expected is not None and stored != expected:
            errors.append(f"{name}: {stored} bytes on storage, {expected} expected (truncated or replaced)")
        if size > limit and samples == 1:
            warnings.append(f"{name}: sample {first_sample} alone is {size} bytes, over the {limit}-byte limit")
        elif size > limit:
            errors.append(f"{name}: {size} bytes in {plural(samples, 'sample')}, over the {limit}-byte limit")
        first_sample += samples
    metadata: dict[str, Any] = {
        "shards": dataset.index.num_shards,
        "largest_shard_bytes": max(dataset.index.bytes_per_shard, default=0),
        "shard_size_limit": limit,
        **_problems(errors + warnings),
    }
    passed = not errors and not warnings
    # WARN only for a warning; a pass keeps Dagster's default (ERROR), which the UI shows as a plain pass
    severity = AssetCheckSeverity.WARN if warnings and not errors else AssetCheckSeverity.ERROR
    return AssetCheckResult(
        check_name=SHARD_SIZE,
        asset_key=MDS_SHARDS,
        passed=passed,
        severity=severity,
        metadata=metadata,
        description="; ".join(errors + warnings) or None,
    )


def shard_size_evaluation(settings: MDSSettings, partition_key: str) -> AssetCheckEvaluation:
    """`shard_size` of one partition as an evaluation recorded on that partition, for runs that
    check partitions other than their own (or have none)."""
    url = partition_url(settings.out_url, partition_key)
    check = streaming_shard_size_result if settings.format == "streaming" else shard_size_result
    result = check(url, settings.shard_size_limit, settings.fsspec_options())
    return AssetCheckEvaluation(
        asset_key=MDS_SHARDS,
        check_name=SHARD_SIZE,
        passed=result.passed,
        metadata=result.metadata,
        severity=result.severity,
        description=result.description,
        blocking=True,
        partition=partition_key,
    )


def shard_size_spec() -> AssetCheckSpec:
    # Partitioned checks are a preview feature of Dagster; they give one result per partition.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        return AssetCheckSpec(
            SHARD_SIZE,
            asset=MDS_SHARDS,
            blocking=True,
            partitions_def=raw_batches,
            description="Every shard at or under shard_size_limit and as long as the index says. A shard "
            "holding one oversized sample is a WARN naming it; anything else is an ERROR.",
        )


def record_shard_size(context: AssetExecutionContext, settings: MDSSettings, key: str) -> None:
    """Evaluate `shard_size` of partition `key`, record it on that partition, and fail the step on an
    ERROR: the check is blocking, so nothing downstream runs on a forged or truncated shard. The
    batch pipeline builds a range of partitions in one step, so it raises per partition (the
    step goes on with the others) rather than leave the failure to the step's end."""
    evaluation = on_latest_materialization(shard_size_evaluation(settings, key), context.instance)
    context.log_event(evaluation)
    if not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR:
        raise Failure(description=f"check {SHARD_SIZE} failed on partition {key}: {evaluation.description}")


def check_every_partition(
    context: AssetExecutionContext, settings: MDSSettings
) -> Iterator[AssetCheckEvaluation | AssetCheckResult]:
    """A checks-only run without a partition (the UI's "Execute all") checks every partition in
    storage (the one record of what is built): one evaluation per partition, shown on that
    partition, then a summary for the run."""
    complete, incomplete = stored_partitions(settings.out_url, settings.fsspec_options())
    registered = set(context.instance.get_dynamic_partitions(RAW_BATCHES))
    keys = sorted(key for key in complete + incomplete if key in registered)
    failed: list[str] = []
    warned: list[str] = []
    for key in keys:
        evaluation = on_latest_materialization(shard_size_evaluation(settings, key), context.instance)
        if not evaluation.passed:
            (failed if evaluation.severity == AssetCheckSeverity.ERROR else warned).append(key)
        yield evaluation
    described = [f"{plural(len(keys), 'partition')} checked"]
    described += [f"failed: {', '.join(failed)}"] if failed else []
    described += [f"warnings: {', '.join(warned)}"] if warned else []
    yield AssetCheckResult(
        check_name=SHARD_SIZE,
        asset_key=MDS_SHARDS,
        passed=not failed and not warned,
        severity=AssetCheckSeverity.ERROR if failed else AssetCheckSeverity.WARN,
        metadata={
            "partitions_checked": len(keys),
            **({"failed_partitions": MetadataValue.json(failed)} if failed else {}),
            **({"warned_partitions": MetadataValue.json(warned)} if warned else {}),
        },
        description="; ".join(described),
    )


@op(out={}, description="The shard_size check of the run's partition, on what is in storage; recorded on mds_shards.")
def check_shard_size(context: OpExecutionContext, mds_settings: MDSSettings) -> Iterator[AssetCheckEvaluation]:
    """Yielded, not logged: Dagster records a yielded evaluation even when it fails the step, which
    it does for a blocking ERROR, as `record_shard_size` does in the batch pipeline."""
    yield on_latest_materialization(shard_size_evaluation(mds_settings, context.partition_key), context.instance)


def _problems(problems: list[str], key: str = "problems") -> dict[str, MetadataValue]:
    """The problems as metadata, or nothing: a passing check shows no empty entry."""
    return {key: MetadataValue.json(problems)} if problems else {}


@asset_check(
    asset=MDS_INDEX,
    name=INDEX_CONSISTENCY,
    description="The published index (index.mds, or index.json in the streaming format) reads back and agrees "
    "with the partitions it was built from: order, totals, every shard present with its size; shards read "
    "back against their CRC-32 (each one "
    "written or changed since it was last verified, then the longest unverified, up to "
    "MDS_VERIFY_BYTES_PER_CHECK bytes, default 1 GiB, each read weighing 1 MiB more than its shard).",
)
def index_consistency(context: AssetCheckExecutionContext, mds_settings: MDSSettings) -> AssetCheckResult:
    options = mds_settings.fsspec_options()
    if mds_settings.format == "streaming":
        return streaming_index_consistency(mds_settings.out_url, options)
    try:
        published = MDSDataset(mds_settings.out_url, storage_options=options)
        manifest = published.manifest()
        partition_keys = json.loads(published.storage.read(PARTITIONS_SIDECAR))["partitions"]
    except (OSError, ValueError, KeyError) as error:
        return AssetCheckResult(passed=False, metadata={"problem": str(error)})
    problems = []
    audited: dict[str, int] = {}
    if manifest is None:
        problems.append("the published dataset has no manifest")
    else:
        problems += _compare_with_partitions(manifest, partition_keys, mds_settings.out_url, options)
        sized = len(problems)
        sizes = published.storage.sizes()  # one listing, not a request per shard
        for shard in manifest.shards:
            stored = sizes.get(shard.file)
            if stored != shard.stored_bytes:
                problems.append(
                    f"{shard.file}: {'missing' if stored is None else f'{stored} bytes'}, "
                    f"manifest says {shard.stored_bytes}"
                )
        if len(problems) == sized:  # every shard there with its size: read them back
            audit = _audit(context, published.storage, manifest)
            problems += list(audit.problems.values())
            if audit.problems:
                problems.append("`mds-assets build --verify` rebuilds damaged shards from the raw batches")
            audited = {"shards_checksummed": len(audit.verified), "bytes_checksummed": audit.bytes_read}
    if manifest is not None and manifest.total_samples != len(published):
        problems.append(f"manifest counts {plural(manifest.total_samples, 'sample')}, the index {len(published)}")
    return AssetCheckResult(
        passed=not problems,
        metadata={
            "partitions": len(partition_keys),
            "samples": len(published),
            "shards": published.index.num_shards,
            **audited,
            **_problems(problems[:50]),
        },
        description="; ".join(problems[:5]) or None,
    )


VERIFIED_KEY = "mds_assets/verified/"  # + the output URL: when each published shard was last read back


def _audit(context: AssetCheckExecutionContext, storage: Storage, manifest: Manifest) -> Audit:
    """Read back the shards due, remembering in the instance's key-value store when each was
    verified (so monitoring never writes into the dataset's folder)."""
    kvs, key = context.instance.run_storage, VERIFIED_KEY + storage.url
    try:
        record = json.loads(kvs.get_cursor_values({key}).get(key) or "{}")
    except ValueError:
        record = {}
    audit, record = audit_shards(storage, manifest, record if isinstance(record, dict) else {})
    kvs.set_cursor_values({key: json.dumps(record, separators=(",", ":"))})
    return audit


def _compare_with_partitions(
    manifest: Manifest, keys: list[str], out_url: str, options: dict[str, Any] | None
) -> list[str]:
    """The published shards, in order, must be the partitions' shards (same samples, bytes, checksum).
    Only the partitions' manifests are read (their shards' records), concurrently: on an object
    store each is a request that mostly waits."""
    with ThreadPoolExecutor(max_workers=max(1, min(CONCURRENT_READS, len(keys)))) as pool:
        read = list(pool.map(lambda key: _partition_manifest(out_url, key, options), keys))
    expected = []
    for key, part in zip(keys, read):
        if isinstance(part, str):
            return [f"partition {key}: {part}"]
        expected += [(key, shard) for shard in part.shards]
    if len(expected) != len(manifest.shards):
        return [f"{plural(len(manifest.shards), 'shard')} published, the partitions hold {len(expected)}"]
    problems = []
    for (key, source), shard in zip(expected, manifest.shards):
        if (source.samples, source.bytes, source.checksum) != (shard.samples, shard.bytes, shard.checksum):
            problems.append(f"{shard.file} is not shard {source.file} of partition {key} (rebuilt since publishing?)")
    return problems


def _partition_manifest(out_url: str, key: str, options: dict[str, Any] | None) -> Manifest | str:
    """A partition's manifest, or what is wrong with it."""
    storage = Storage(partition_url(out_url, key), options)
    try:
        return Manifest.from_json(storage.read(MANIFEST_NAME), storage.describe(MANIFEST_NAME))
    except FileNotFoundError:
        return "no manifest"
    except (OSError, ValueError) as error:
        return str(error)


@asset_check(
    asset=MDS_INDEX,
    name=SAMPLES_DECODE,
    description="Samples of the published dataset decode with the field encodings its manifest records "
    "(the configured ones for a dataset that records none): first and last sample of up to 200 shards.",
)
def samples_decode(context: AssetCheckExecutionContext, mds_settings: MDSSettings) -> AssetCheckResult:
    options = mds_settings.fsspec_options()
    try:
        # decoded as its readers will: by the encodings the dataset records (index.json, or the
        # manifest), the configured ones only for a composer dataset that records none
        dataset = MDSDataset(mds_settings.out_url, decoders="auto", storage_options=options)
        if mds_settings.format != "streaming" and not dataset.decoded_as:  # its manifest records no encoding
            decoders = decoders_for(mds_settings.selections())
            dataset = MDSDataset(mds_settings.out_url, decoders=decoders, storage_options=options)
    except (OSError, ValueError, KeyError) as error:
        return AssetCheckResult(passed=False, metadata={"problem": str(error)})
    samples_per_shard = _samples_per_shard(dataset)
    starts = [0]
    for count in samples_per_shard:
        starts.append(starts[-1] + count)
    step = max(1, len(samples_per_shard) // MAX_SHARDS_DECODED)
    probes = sorted(
        {
            n
            for shard in range(0, len(samples_per_shard), step)
            for n in (starts[shard], starts[shard + 1] - 1)
            if starts[shard] < starts[shard + 1]
        }
    )
    failures = []
    for sample_number in probes:
        try:
            dataset[sample_number]
        except Exception as error:  # a decoder may raise anything; each failure is reported, not raised
            failures.append(f"sample {sample_number}: {error}")
    return AssetCheckResult(
        passed=not failures,
        metadata={"samples_decoded": len(probes) - len(failures), **_problems(failures[:20], "failures")},
        description="; ".join(failures[:3]) or None,
    )


def _samples_per_shard(dataset: MDSDataset) -> list[int]:
    """Each shard's sample count, from the index of either format."""
    if isinstance(dataset, StreamingFormatDataset):
        return [shard.samples for shard in dataset.streaming_index.shards]
    return list(dataset.index.samples_per_shard)
