"""`--format streaming`: the assets write mosaicml-streaming's MDS v2 and publish it by reference;
mosaicml-streaming 0.13.0's own `StreamingDataset` (tests/streaming_reference.py) reads it."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetCheckEvaluation, Definitions

from mds_assets.assets.batch_pipeline import batch_pipeline
from mds_assets.assets.index import how_to_load_streaming, load_cache_folder, mds_index
from mds_assets.build import build
from mds_assets.checks import index_consistency, samples_decode
from mds_assets.core.generations import is_generation
from mds_assets.core.grouping import RawGroup
from mds_assets.core.output_format import OutputFormatError
from mds_assets.core.raw_sources import list_batches
from mds_assets.core.streaming_partition import write_streaming_partition
from mds_assets.jobs import index_checks_job
from mds_assets.resources import MDSSettings, settings_from_environment
from writer import MDSDataset
from writer.published import read_state
from writer.storage import Storage

from ..commands import MDS_ASSETS, build_arguments
from ..streaming_reference import dataset_module
from .conftest import FIELDS, record, snapshot, write_batch


def streaming(settings: MDSSettings, **changes: object) -> MDSSettings:
    return MDSSettings(**{**settings.model_dump(), "format": "streaming", **changes})


def as_records(sample: dict, batch: int, number: int) -> None:
    """Assert a sample read back is the raw record: text as text, numbers and JSON as they were,
    the base64 field as the bytes it encodes."""
    raw = record(batch, number)
    assert sample["uid"] == raw["uid"] and sample["text"] == raw["text"]
    assert sample["blob"] == base64.b64decode(raw["blob"])
    assert sample["n"] == raw["n"] and sample["meta"] == raw["meta"]


def streaming_dataset(remote: str, local: Path) -> object:
    """mosaicml-streaming 0.13.0's StreamingDataset, the way a trainer opens the dataset."""
    return dataset_module().StreamingDataset(remote=remote, local=str(local), shuffle=False, batch_size=1)


def published_checks(instance: object, settings: MDSSettings) -> dict[str, AssetCheckEvaluation]:
    """The published dataset's checks, run as the UI's "check_published_dataset" job runs them."""
    definitions = Definitions(
        assets=[batch_pipeline, mds_index],
        asset_checks=[index_consistency, samples_decode],
        resources={"mds_settings": settings},
        jobs=[index_checks_job],
    )
    result = definitions.resolve_job_def("check_published_dataset").execute_in_process(instance=instance)
    return {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}


def published_basenames(out: Path) -> list[str]:
    return [shard["raw_data"]["basename"] for shard in json.loads((out / "index.json").read_text())["shards"]]


def test_the_command_publishes_a_dataset_that_streaming_reads_as_the_raw_records(instance, settings, tmp_path):
    arguments = [*build_arguments(settings.raw_url, settings.out_url, FIELDS), "--shard-size-limit", "1000"]
    command = [*MDS_ASSETS, *arguments, "--format", "streaming", "--compression", "zstd", "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=os.environ)
    assert done.returncode == 0, done.stderr
    assert "published 120 samples" in done.stdout and "check samples_decode: passed" in done.stdout
    assert "from streaming import StreamingDataset" in done.stdout
    dataset = streaming_dataset(settings.out_url, tmp_path / "cache")
    assert len(dataset) == 120
    for number in range(120):
        as_records(dataset[number], number // 40, number % 40)


def test_the_published_index_refers_to_the_partitions_shards_where_they_are(instance, settings):
    report = build(streaming(settings), workers=1, progress=False)
    assert report.ok, report.failed
    out = Path(settings.out_url)
    assert sorted(p.name for p in out.iterdir()) == ["index.json", "partitions"]  # no shard at the root
    names = published_basenames(out)
    assert len(names) == report.published["shards"].value > 3
    for name in names:
        partitions, key, generation, shard = name.split("/")
        assert partitions == "partitions" and key.startswith("batch-") and is_generation(generation)
        assert re.fullmatch(r"shard\.\d{5}\.mds", shard) and (out / name).is_file()
    assert report.published["placement"].value == "by reference (index.json written)"
    assert report.published["format"].value == "streaming"
    assert report.checks == {"index_consistency": True, "samples_decode": True}
    assert read_state(Storage(settings.out_url)).describe().startswith("a dataset of 120 samples")


def test_a_rebuild_keeps_every_file_the_published_index_refers_to_until_it_is_published(instance, settings, tmp_path):
    settings = streaming(settings)
    assert build(settings, workers=1, progress=False).ok
    out = Path(settings.out_url)
    published = {name: (out / name).read_bytes() for name in published_basenames(out)}
    index = (out / "index.json").read_bytes()
    write_batch(Path(settings.raw_url), "batch-1.jsonl", [record(1, n + 100) for n in range(40)])

    batch = next(b for b in list_batches(settings.raw_url) if b.partition_key == "batch-1")
    group = RawGroup((batch,))  # one file: the settings fixture's partition_bytes is 1
    write_streaming_partition(group, settings.selections(), settings.out_url, settings.shard_size_limit, None)
    assert (out / "index.json").read_bytes() == index  # the partition is rebuilt, the dataset not yet published
    assert {name: (out / name).read_bytes() for name in published_basenames(out)} == published
    as_records(MDSDataset(settings.out_url, decoders="auto")[40], 1, 0)  # still the published dataset
    consistency = published_checks(instance, settings)["index_consistency"]
    assert not consistency.passed and "partition batch-1 are not its current ones" in consistency.description

    report = build(settings, workers=1, progress=False)
    assert report.ok and report.built == [] and report.published["changed"].value
    as_records(MDSDataset(settings.out_url, decoders="auto")[40], 1, 100)
    generations = sorted(p.name for p in (out / "partitions" / "batch-1").iterdir() if p.is_dir())
    assert len(generations) == 1 and all(f"batch-1/{generations[0]}/" in n for n in published_basenames(out)[5:10])
    assert not any(name in published for name in published_basenames(out) if "batch-1/" in name)


def test_publishing_again_without_a_change_writes_nothing(instance, settings):
    settings = streaming(settings)
    assert build(settings, workers=1, progress=False).ok
    before = snapshot(Path(settings.out_url))
    report = build(settings, workers=1, progress=False)
    assert report.ok and report.built == [] and not report.published["changed"].value
    assert snapshot(Path(settings.out_url)) == before


@pytest.mark.parametrize("first, second", [("composer", "streaming"), ("streaming", "composer")])
def test_switching_the_format_of_an_output_is_refused_naming_the_setting_and_changes_nothing(
    instance, settings, first, second
):
    assert build(MDSSettings(**{**settings.model_dump(), "format": first}), workers=1, progress=False).ok
    before = snapshot(Path(settings.out_url))
    with pytest.raises(OutputFormatError) as refused:
        build(MDSSettings(**{**settings.model_dump(), "format": second}), workers=1, progress=False)
    message = str(refused.value)
    assert f"is a {first}-format dataset" in message and "MDS_FORMAT, --format" in message
    assert f"is {second!r}" in message and settings.out_url in message
    assert snapshot(Path(settings.out_url)) == before


def test_the_command_refuses_a_format_switch_with_the_reason(instance, settings, capsys):
    from mds_assets.cli import main

    assert main([*build_arguments(settings.raw_url, settings.out_url, FIELDS), "--quiet"]) == 0
    capsys.readouterr()
    status = main([*build_arguments(settings.raw_url, settings.out_url, FIELDS), "--format", "streaming", "--quiet"])
    assert status == 1
    assert "index.mds is a composer-format dataset" in capsys.readouterr().err


@pytest.mark.parametrize(
    "format, compression, accepted",
    [
        ("streaming", "zstd", "zstd"),
        ("streaming", "zstd:7", "zstd:7"),
        ("streaming", "gz", "gz"),
        ("streaming", None, None),
        ("composer", "gz", "gz:6"),
    ],
)
def test_compression_is_checked_for_its_format(settings, format, compression, accepted):
    chosen = MDSSettings(**{**settings.model_dump(), "format": format, "compression": compression})
    chosen.check()
    assert chosen.canonical_compression() == accepted


@pytest.mark.parametrize(
    "format, compression, message",
    [
        ("composer", "zstd", "compression: unknown compression 'zstd'.*need format 'streaming'"),
        ("streaming", "zstd:99", "compression: bad compression level in 'zstd:99'.*format 'streaming'"),
        ("streaming", "zip", "compression: unknown compression 'zip'"),
    ],
)
def test_a_compression_the_format_does_not_have_is_refused_naming_the_setting(settings, format, compression, message):
    with pytest.raises(ValueError, match=message):
        MDSSettings(**{**settings.model_dump(), "format": format, "compression": compression}).check()


def test_the_format_comes_from_mds_format(monkeypatch):
    monkeypatch.setenv("MDS_FORMAT", "streaming")
    assert settings_from_environment().format == "streaming"
    monkeypatch.setenv("MDS_FORMAT", "v2")
    with pytest.raises(ValueError, match="MDS_FORMAT='v2': expected one of composer, streaming"):
        settings_from_environment()
    monkeypatch.delenv("MDS_FORMAT")
    assert settings_from_environment().format == "composer"


def test_the_load_snippet_loads_the_dataset_with_streaming(instance, settings, tmp_path, monkeypatch):
    settings = streaming(settings)
    assert build(settings, workers=1, progress=False).ok
    module = dataset_module()
    monkeypatch.setattr(sys.modules["streaming"], "StreamingDataset", module.StreamingDataset, raising=False)
    code = how_to_load_streaming(settings.out_url).strip("`\n").removeprefix("python\n")
    local = load_cache_folder(settings.out_url)
    code = code.replace(repr(local), repr(str(tmp_path / "cache")))  # the test's own cache folder
    namespace: dict = {}
    exec(compile(code, "<how_to_load>", "exec"), namespace)
    as_records(namespace["sample"], 0, 0)
    assert len(namespace["dataset"]) == 120


def test_two_datasets_get_two_cache_folders_in_the_streaming_snippet():
    snippets = [how_to_load_streaming(url) for url in ("s3://bucket/a", "s3://bucket/b", "/data/a")]
    folders = {re.search(r"local = '([^']+)'", snippet).group(1) for snippet in snippets}
    assert len(folders) == 3
    assert "republished" in snippets[0] and "for this dataset only" in snippets[0]


def test_samples_decode_reports_a_shard_that_does_not_decode(instance, settings):
    settings = streaming(settings)
    assert build(settings, workers=1, progress=False).ok
    out = Path(settings.out_url)
    shard = out / published_basenames(out)[0]
    data = bytearray(shard.read_bytes())
    data[-3:] = b"\xff\xff\xff"  # the last sample's last column (uid, str) is no longer UTF-8
    shard.write_bytes(bytes(data))
    last = json.loads((out / "index.json").read_text())["shards"][0]["samples"] - 1
    checks = published_checks(instance, settings)
    assert checks["index_consistency"].passed  # sizes and index agree: only the content is damaged
    assert not checks["samples_decode"].passed and f"sample {last}: " in checks["samples_decode"].description


def test_after_a_failed_build_the_report_says_what_the_output_holds_read_back(instance, settings):
    settings = streaming(settings)
    assert build(settings, workers=1, progress=False).ok
    write_batch(Path(settings.raw_url), "batch-3.jsonl", [record(3, 0), {"uid": "no other field"}])
    report = build(settings, workers=1, progress=False)
    assert list(report.failed) == ["batch-3"] and "line 2" in report.failed["batch-3"]
    assert f"the dataset at {settings.out_url} is unchanged (a dataset of 120 samples" in report.dataset_state
    assert not (Path(settings.out_url) / "partitions" / "batch-3").exists() or not any(
        (Path(settings.out_url) / "partitions" / "batch-3").glob("*/shard.*")
    )  # the failed build's generation is discarded
