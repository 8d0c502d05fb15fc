"""Asset checks, each a short function over `writer.reader`: they judge what is in storage."""

import json
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetRecordsFilter,
    DagsterInstance,
    MetadataValue,
    asset_check,
)

# Not exported by `dagster` 1.13.27 (pinned); the type of AssetCheckEvaluation's public
# `target_materialization_data` argument.
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluationTargetMaterializationData

from writer import MDSDataset
from writer.manifest import Manifest

from .core.layout import partition_url
from .core.selection import decoders_for
from .core.wording import plural
from .keys import INDEX_CONSISTENCY, MDS_INDEX, MDS_SHARDS, SAMPLES_DECODE, SHARD_SIZE
from .resources import MDSSettings

PARTITIONS_SIDECAR = "mds_partitions.json"
MAX_SHARDS_DECODED = 200


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
    for number, (samples, size) in enumerate(zip(dataset.index.samples_per_shard, dataset.index.bytes_per_shard)):
        name = dataset.shard_file(number)
        stored = _stored_size(dataset, name)
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
    result = shard_size_result(
        partition_url(settings.out_url, partition_key), settings.shard_size_limit, settings.fsspec_options()
    )
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


def on_latest_materialization(evaluation: AssetCheckEvaluation, instance: DagsterInstance) -> AssetCheckEvaluation:
    """The evaluation pointed at the latest materialization of its partition, as Dagster does for
    an `AssetCheckResult` of a one-partition step. Dagster judges a partition's check current only
    when its latest evaluation targets the partition's latest materialization: without the target,
    the UI shows every partition of a passing check as missing (and Lineage "0 / 1 Passed")."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=evaluation.asset_key, asset_partitions=[evaluation.partition])
        if evaluation.partition is not None
        else evaluation.asset_key,
        limit=1,
    ).records
    if not records:
        return evaluation
    target = AssetCheckEvaluationTargetMaterializationData(
        storage_id=records[0].storage_id, run_id=records[0].run_id, timestamp=records[0].timestamp
    )
    return AssetCheckEvaluation(
        asset_key=evaluation.asset_key,
        check_name=evaluation.check_name,
        passed=evaluation.passed,
        metadata=evaluation.metadata,
        target_materialization_data=target,
        severity=evaluation.severity,
        description=evaluation.description,
        blocking=evaluation.blocking,
        partition=evaluation.partition,
    )


def _problems(problems: list[str], key: str = "problems") -> dict[str, MetadataValue]:
    """The problems as metadata, or nothing: a passing check shows no empty entry."""
    return {key: MetadataValue.json(problems)} if problems else {}


def _stored_size(dataset: MDSDataset, name: str) -> int | None:
    try:
        return dataset.storage.size(name)
    except FileNotFoundError:
        return None


@asset_check(
    asset=MDS_INDEX,
    name=INDEX_CONSISTENCY,
    description="The published index reads back and agrees with the partitions it was built from: "
    "order, totals, every shard present with its size and checksum.",
)
def index_consistency(context: AssetCheckExecutionContext, mds_settings: MDSSettings) -> AssetCheckResult:
    options = mds_settings.fsspec_options()
    try:
        published = MDSDataset(mds_settings.out_url, storage_options=options)
        manifest = published.manifest()
        partition_keys = json.loads(published.storage.read(PARTITIONS_SIDECAR))["partitions"]
    except (OSError, ValueError, KeyError) as error:
        return AssetCheckResult(passed=False, metadata={"problem": str(error)})
    problems = []
    if manifest is None:
        problems.append("the published dataset has no manifest")
    else:
        problems += _compare_with_partitions(manifest, partition_keys, mds_settings.out_url, options)
        for shard in manifest.shards:
            stored = _stored_size(published, shard.file)
            if stored != shard.stored_bytes:
                problems.append(
                    f"{shard.file}: {'missing' if stored is None else f'{stored} bytes'}, "
                    f"manifest says {shard.stored_bytes}"
                )
    if manifest is not None and manifest.total_samples != len(published):
        problems.append(f"manifest counts {plural(manifest.total_samples, 'sample')}, the index {len(published)}")
    return AssetCheckResult(
        passed=not problems,
        metadata={
            "partitions": len(partition_keys),
            "samples": len(published),
            "shards": published.index.num_shards,
            **_problems(problems[:50]),
        },
        description="; ".join(problems[:5]) or None,
    )


def _compare_with_partitions(
    manifest: Manifest, keys: list[str], out_url: str, options: dict[str, Any] | None
) -> list[str]:
    """The published shards, in order, must be the partitions' shards (same samples, bytes, checksum)."""
    expected = []
    for key in keys:
        try:
            part = MDSDataset(partition_url(out_url, key), storage_options=options).manifest()
        except (OSError, ValueError) as error:
            return [f"partition {key}: {error}"]
        if part is None:
            return [f"partition {key}: no manifest"]
        expected += [(key, shard) for shard in part.shards]
    if len(expected) != len(manifest.shards):
        return [f"{plural(len(manifest.shards), 'shard')} published, the partitions hold {len(expected)}"]
    problems = []
    for (key, source), shard in zip(expected, manifest.shards):
        if (source.samples, source.bytes, source.checksum) != (shard.samples, shard.bytes, shard.checksum):
            problems.append(f"{shard.file} is not shard {source.file} of partition {key} (rebuilt since publishing?)")
    return problems


@asset_check(
    asset=MDS_INDEX,
    name=SAMPLES_DECODE,
    description="Samples of the published dataset decode with the configured field encodings "
    "(first and last sample of up to 200 shards).",
)
def samples_decode(context: AssetCheckExecutionContext, mds_settings: MDSSettings) -> AssetCheckResult:
    try:
        decoders = decoders_for(mds_settings.selections())
        dataset = MDSDataset(mds_settings.out_url, decoders=decoders, storage_options=mds_settings.fsspec_options())
    except (OSError, ValueError, KeyError) as error:
        return AssetCheckResult(passed=False, metadata={"problem": str(error)})
    starts = [0]
    for count in dataset.index.samples_per_shard:
        starts.append(starts[-1] + count)
    step = max(1, dataset.index.num_shards // MAX_SHARDS_DECODED)
    probes = sorted(
        {
            n
            for shard in range(0, dataset.index.num_shards, step)
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
