"""The asset graph materialised in-process on temporary directories."""

import pytest
from dagster import AssetSelection, Definitions, materialize

from mds_assets.assets.batch_pipeline import batch_pipeline
from mds_assets.assets.index import mds_index
from mds_assets.checks import index_consistency, samples_decode
from mds_assets.core.selection import RecordEncoder, decoders_for
from mds_assets.jobs import build_partition_job, index_checks_job, partition_checks_job
from mds_assets.keys import MDS_SHARDS, RAW_SAMPLES, SELECTED_SAMPLES
from mds_assets.partitions import raw_batches
from mds_assets.resources import MDSSettings
from writer import MDSDataset, StreamingDatasetWriter

from .conftest import record, snapshot, write_batch

ALL = [batch_pipeline, mds_index, index_consistency, samples_decode]
PARTITION = AssetSelection.assets(RAW_SAMPLES, SELECTED_SAMPLES, MDS_SHARDS)


def materialise_partition(instance, settings, key, **kwargs):
    return materialize(
        ALL, selection=PARTITION, partition_key=key, instance=instance, resources={"mds_settings": settings}, **kwargs
    )


def publish(instance, settings, **kwargs):
    return materialize(
        ALL,
        selection=AssetSelection.assets(mds_index),
        instance=instance,
        resources={"mds_settings": settings},
        **kwargs,
    )


def register(instance, *keys):
    instance.add_dynamic_partitions(raw_batches.name, list(keys))


def test_partitions_then_index_publish_one_dataset_in_key_order(instance, settings, tmp_path):
    register(instance, "batch-2", "batch-0", "batch-1")
    for key in ("batch-2", "batch-0", "batch-1"):
        result = materialise_partition(instance, settings, key)
        evaluation = result.get_asset_check_evaluations()[0]
        assert evaluation.check_name == "shard_size" and evaluation.passed
    result = publish(instance, settings)
    assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == {
        "index_consistency": True,
        "samples_decode": True,
    }
    for evaluation in result.get_asset_check_evaluations():  # passing checks show no empty lists
        assert not {"problems", "failures"} & set(evaluation.metadata), evaluation.metadata
    metadata = result.asset_materializations_for_node("mds_index")[0].metadata
    assert metadata["dagster/row_count"].value == 120
    assert "StreamingDataset(remote=" in metadata["how_to_load"].value

    selections = settings.selections()
    dataset = MDSDataset(settings.out_url, decoders=decoders_for(selections))
    expected = [
        {
            s.name: decoders_for(selections)[s.name](value)
            for s, value in zip(selections, RecordEncoder(selections, "b").encode(1, record(batch, n)).values())
        }
        for batch in range(3)
        for n in range(40)
    ]
    assert list(dataset) == expected
    assert dataset[-1]["uid"] == "2-39" and dataset[0]["meta"] == {"batch": 0, "tags": ["a", 0]}
    assert max(dataset.index.bytes_per_shard) <= 1000


def build_and_publish(instance, settings, *keys):
    register(instance, *keys)
    for key in keys:
        materialise_partition(instance, settings, key)
    publish(instance, settings)


def published_files(out):
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


def test_rematerialising_the_index_is_idempotent(instance, settings, tmp_path):
    build_and_publish(instance, settings, "batch-0", "batch-1")
    before = published_files(tmp_path / "out")
    result = publish(instance, settings)
    assert result.asset_materializations_for_node("mds_index")[0].metadata["changed"].value is False
    assert published_files(tmp_path / "out") == before


def test_a_bad_record_fails_its_partition_naming_batch_line_and_field(instance, settings, raw_dir):
    records = [record(7, n) for n in range(5)]
    del records[3]["text"]
    write_batch(raw_dir, "broken.jsonl", records)
    register(instance, "broken")
    result = materialise_partition(instance, settings, "broken", raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = str(failure.step_failure_data.error)
    assert "batch broken.jsonl, line 4, field 'text': missing" in message


def test_unreadable_json_fails_the_partition_before_raw_samples_naming_batch_and_line(instance, settings, raw_dir):
    (raw_dir / "garbled.jsonl").write_text('{"uid": "1"}\n{"uid": \n')
    register(instance, "garbled")
    result = materialise_partition(instance, settings, "garbled", raise_on_error=False)
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "batch_pipeline"
    assert not instance.get_materialized_partitions(RAW_SAMPLES)  # the preview itself could not be read
    assert "batch garbled.jsonl, line 2: not valid JSON" in str(failure.step_failure_data.error)


def test_a_path_traversal_partition_key_reaches_nothing_outside_partitions(instance, settings, tmp_path):
    # A key typed into the UI: <out>/partitions/../escape is a valid dataset planted outside
    # <out>/partitions/. Checking that partition must refuse the key, not judge the planted
    # dataset; publishing reads only <out>/partitions/, so it never sees it either.
    forge_partition(settings, "../escape", [10, 10], limit=1000)
    before = snapshot(tmp_path / "out")
    register(instance, "../escape")
    assert not materialise_partition(instance, settings, "../escape", raise_on_error=False).success
    check = job("check_partition", settings).execute_in_process(
        tags={"dagster/partition": "../escape"}, instance=instance, raise_on_error=False
    )
    assert not check.success and not any(e.passed for e in check.get_asset_check_evaluations())
    failure = next(e for e in check.all_events if e.is_step_failure)
    assert "unsafe partition key '../escape'" in str(failure.step_failure_data.error)
    assert not publish(instance, settings, raise_on_error=False).success
    assert snapshot(tmp_path / "out") == before and not (tmp_path / "escape").exists()


def test_a_partition_whose_dataset_vanished_blocks_publishing(instance, settings, tmp_path):
    build_and_publish(instance, settings, "batch-0", "batch-1")
    before = published_files(tmp_path / "out")
    (tmp_path / "out" / "partitions" / "batch-1" / "index.mds").unlink()
    result = publish(instance, settings, raise_on_error=False)
    assert not result.success
    message = str(next(e for e in result.all_events if e.is_step_failure).step_failure_data.error)
    assert "batch-1 " in message and "no complete dataset" in message and "batch-0" not in message
    assert "nothing was published" in message
    assert published_files(tmp_path / "out") == before


def job(name, settings):
    """A job of the code location, bound to the test's settings."""
    defs = Definitions(
        assets=ALL[:2],
        asset_checks=ALL[2:],
        resources={"mds_settings": settings},
        jobs=[build_partition_job, partition_checks_job, index_checks_job],
    )
    return defs.resolve_job_def(name)


def run_shard_check_alone(instance, settings, key):
    result = job("check_partition", settings).execute_in_process(
        tags={"dagster/partition": key}, instance=instance, raise_on_error=False
    )
    assert not result.asset_materializations_for_node("mds_shards")
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def forge_partition(settings, key, payload_sizes, limit):
    with StreamingDatasetWriter(
        f"{settings.out_url}/partitions/{key}", ["uid"], shard_size_limit=limit, overwrite=True
    ) as writer:
        for size in payload_sizes:
            writer.write_sample({"uid": b"u" * size})


def test_shard_size_check_errors_on_a_forged_oversize_shard(instance, settings):
    register(instance, "batch-0")
    materialise_partition(instance, settings, "batch-0")
    assert run_shard_check_alone(instance, settings, "batch-0").passed
    forge_partition(settings, "batch-0", [600, 600], limit=10_000)  # one 1216-byte shard of 2 samples
    evaluation = run_shard_check_alone(instance, settings, "batch-0")
    assert not evaluation.passed and evaluation.severity.value == "ERROR"
    assert "over the 1000-byte limit" in evaluation.description


def test_shard_size_check_warns_naming_a_lone_oversized_sample(instance, settings):
    register(instance, "batch-0")
    materialise_partition(instance, settings, "batch-0")
    forge_partition(settings, "batch-0", [10, 5000, 10], limit=1000)
    evaluation = run_shard_check_alone(instance, settings, "batch-0")
    assert not evaluation.passed and evaluation.severity.value == "WARN"
    assert "sample 1 alone is 5008 bytes" in evaluation.description


def test_shard_size_check_errors_on_a_truncated_shard(instance, settings, tmp_path):
    register(instance, "batch-0")
    materialise_partition(instance, settings, "batch-0")
    shard = tmp_path / "out" / "partitions" / "batch-0" / "000001.mds"
    shard.write_bytes(shard.read_bytes()[:-10])
    evaluation = run_shard_check_alone(instance, settings, "batch-0")
    assert not evaluation.passed and evaluation.severity.value == "ERROR"
    assert "000001.mds" in evaluation.description and "truncated" in evaluation.description


def test_index_checks_fail_when_a_published_shard_is_damaged(instance, settings, tmp_path):
    register(instance, "batch-0")
    materialise_partition(instance, settings, "batch-0")
    publish(instance, settings)
    (tmp_path / "out" / "000000.mds").unlink()
    result = job("check_published_dataset", settings).execute_in_process(instance=instance)
    outcome = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert outcome == {"index_consistency": False, "samples_decode": False}


@pytest.mark.parametrize("compression", ["gz", None])
def test_gz_and_plain_partitions_publish_with_their_compression(instance, settings, compression, tmp_path):
    settings = MDSSettings(**{**settings.model_dump(), "compression": compression})
    register(instance, "batch-0", "batch-1")
    for key in ("batch-0", "batch-1"):
        materialise_partition(instance, settings, key)
    publish(instance, settings)
    assert (tmp_path / "out" / "compression.txt").exists() == (compression == "gz")
    assert len(MDSDataset(settings.out_url)) == 80


def test_descriptions_shown_in_the_ui_hold_no_html_like_text():
    """The UI renders descriptions as Markdown: `<out>/partitions/<key>/` outside backticks
    showed as "/partitions//"."""
    import re

    from mds_assets.definitions import defs

    repository = defs.get_repository_def()
    graph = repository.asset_graph
    texts = {key.to_user_string(): graph.get(key).description for key in graph.get_all_asset_keys()}
    texts.update({key.to_user_string(): graph.get(key).description for key in graph.asset_check_keys})
    texts.update({job.name: job.description for job in repository.get_all_jobs() if not job.name.startswith("__")})
    texts.update({d.name: d.description for d in [*repository.sensor_defs, *repository.schedule_defs]})
    for name, text in texts.items():
        assert text, f"{name} has no description"
        outside_code = re.sub(r"`[^`]*`", "", text)
        assert not re.search(r"<[A-Za-z/!]", outside_code), f"{name}: {text}"


def test_counts_read_as_people_write_them():
    from mds_assets.core.wording import plural

    assert [plural(n, "shard") for n in (0, 1, 2)] == ["0 shards", "1 shard", "2 shards"]
