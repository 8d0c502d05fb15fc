"""Builds, errors, previews and publishing when a partition is a group of many small raw files."""

import json
from pathlib import Path

import pytest
from dagster import AssetKey

from mds_assets.build import build
from mds_assets.cli import main
from mds_assets.core.layout import stored_partitions
from mds_assets.resources import MDSSettings
from writer import MDSDataset

from .conftest import FIELDS, record, write_batch

PARTITION_BYTES = 64 << 20  # every small file below lands in one group (their names make no cut)


def small_files(raw: Path, count: int, records: int = 3, start: int = 0) -> None:
    for number in range(start, start + count):
        write_batch(raw, f"hour-{number:04}.jsonl", [record(number, n) for n in range(records)])


def grouped(tmp_path: Path, **changes) -> MDSSettings:
    defaults = {"fields": FIELDS, "shard_size_limit": 1 << 20, "partition_bytes": PARTITION_BYTES}
    return MDSSettings(raw_url=str(tmp_path / "raw"), out_url=str(tmp_path / "out"), **(defaults | changes))


def published_uids(settings: MDSSettings) -> list[str]:
    dataset = MDSDataset(settings.out_url)
    return [dataset[n]["uid"].decode() for n in range(len(dataset))]


def test_small_files_build_one_partition_and_one_shard(instance, tmp_path):
    small_files(tmp_path / "raw", 30)
    settings = grouped(tmp_path)
    report = build(settings, workers=2, progress=False)
    assert report.ok and len(report.built) == 1
    (key,) = report.built
    assert key.startswith("hour-0000_30_files-")
    dataset = MDSDataset(settings.out_url)
    assert len(dataset) == 90 and dataset.index.num_shards == 1
    stamp = json.loads((tmp_path / "out" / "partitions" / key / "mds_source.json").read_text())
    assert [name for name, _ in stamp["batches"]] == [f"hour-{n:04}.jsonl" for n in range(30)]


def test_a_new_file_rebuilds_its_group_only_and_the_replaced_partition_is_not_published_twice(instance, tmp_path):
    raw = tmp_path / "raw"
    small_files(raw, 30)
    write_batch(raw, "zz-large.jsonl", [record(99, n) for n in range(40)])
    settings = grouped(tmp_path, partition_bytes=200_000)  # the large file is a partition of its own
    first = build(settings, workers=1, progress=False)
    assert first.ok and "zz-large" in first.built and len(first.built) >= 2
    small_files(raw, 1, start=30)
    second = build(settings, workers=1, progress=False)
    assert second.ok and len(second.built) == 1 and "zz-large" in second.unchanged
    uids = published_uids(settings)
    assert len(uids) == len(set(uids)) == 31 * 3 + 40  # no record twice, none missing
    complete, incomplete = stored_partitions(settings.out_url, None)
    assert sorted(complete) == sorted(second.built + second.unchanged) and not incomplete
    registered = set(instance.get_dynamic_partitions("raw_batches"))
    assert not (set(first.built) - set(complete)) & registered  # the replaced key left the UI too


def test_a_changed_member_rebuilds_its_group_under_the_same_key_and_a_removed_one_leaves_it(instance, tmp_path):
    raw = tmp_path / "raw"
    small_files(raw, 10)
    settings = grouped(tmp_path)
    (key,) = build(settings, workers=1, progress=False).built
    write_batch(raw, "hour-0004.jsonl", [record(4, n) for n in range(5)])  # changed: 5 records, not 3
    again = build(settings, workers=1, progress=False)
    assert again.ok and again.built == [key]
    assert len(published_uids(settings)) == 9 * 3 + 5
    assert build(settings, workers=1, progress=False).built == []  # nothing changed: nothing built
    (raw / "hour-0007.jsonl").unlink()
    removed = build(settings, workers=1, progress=False)
    assert removed.ok and removed.built != [key]
    uids = published_uids(settings)
    assert len(uids) == 8 * 3 + 5 and not [uid for uid in uids if uid.startswith("7-")]


@pytest.mark.parametrize("format", ["composer", "streaming"])
def test_the_regrouped_partition_replaces_the_old_one_whatever_their_keys_order(instance, tmp_path, format):
    raw = tmp_path / "raw"
    small_files(raw, 12)
    settings = grouped(tmp_path, format=format)
    (old,) = build(settings, workers=1, progress=False).built
    (raw / "hour-0007.jsonl").unlink()
    removed = build(settings, workers=1, progress=False)
    (new,) = removed.built
    assert new < old  # "..._11_files-..." sorts before "..._12_files-...": only the build times say which is newer
    assert removed.ok, removed.failed
    uids = published_uids(settings)
    assert len(uids) == len(set(uids)) == 11 * 3 and not [uid for uid in uids if uid.startswith("7-")]
    assert stored_partitions(settings.out_url, None) == ([new], [])


def test_a_bad_record_deep_in_a_group_names_its_file_line_and_field(instance, tmp_path, capsys):
    raw = tmp_path / "raw"
    small_files(raw, 12)
    bad = [record(6, n) for n in range(3)]
    bad[2]["n"] = "not a number"
    write_batch(raw, "hour-0006.jsonl", bad)
    code = main(
        ["build", "--raw", str(raw), "--out", str(tmp_path / "out"), "--fields", ",".join(FIELDS), "--quiet"]
        + ["--partition-bytes", "64MB"]
    )
    assert code == 1
    assert (
        "batch hour-0006.jsonl, line 3, field 'n': a JSON string cannot be encoded as int64" in capsys.readouterr().err
    )


def test_a_missing_field_in_a_later_file_of_the_preview_names_that_file(instance, tmp_path):
    raw = tmp_path / "raw"
    write_batch(raw, "a.jsonl", [record(1, 0)])
    write_batch(raw, "b.jsonl", [{k: v for k, v in record(2, 0).items() if k != "text"}])
    report = build(grouped(tmp_path), workers=1, progress=False)
    (error,) = report.failed.values()
    assert "batch b.jsonl, line 1, field 'text': missing" in error


def test_the_preview_of_a_group_lists_its_files(instance, tmp_path):
    small_files(tmp_path / "raw", 4)
    settings = grouped(tmp_path)
    (key,) = build(settings, workers=1, progress=False).built
    event = instance.get_latest_materialization_event(AssetKey("raw_samples"))
    metadata = event.asset_materialization.metadata
    assert event.asset_materialization.partition == key
    assert metadata["files"].value == 4
    assert metadata["file_names"].value == [f"hour-{n:04}.jsonl" for n in range(4)]
    assert metadata["batch"].value == "hour-0000.jsonl to hour-0003.jsonl (4 files)"
    assert "1-0" in metadata["preview"].value  # the preview's rows come from the first files


def test_image_folder_and_parquet_batches_are_grouped_too(instance, tmp_path, monkeypatch):
    parquet = pytest.importorskip("pyarrow.parquet")
    import pyarrow

    raw = tmp_path / "raw"
    for name in ("pics-a", "pics-b"):
        (raw / name / "cat").mkdir(parents=True)
        (raw / name / "cat" / "1.png").write_bytes(name.encode())
    settings = MDSSettings(raw_url=str(raw), out_url=str(tmp_path / "out"), fields=["path", "label", "content:bytes"])
    report = build(settings, workers=1, progress=False)
    assert report.ok and len(report.built) == 1
    dataset = MDSDataset(settings.out_url)
    assert sorted(dataset[n]["content"] for n in range(len(dataset))) == [b"pics-a", b"pics-b"]

    tables = tmp_path / "tables"
    tables.mkdir()
    for number in range(3):
        parquet.write_table(pyarrow.table({"uid": [f"{number}-{n}" for n in range(4)]}), tables / f"t{number}.parquet")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home-tables"))  # another dataset, its own instance
    settings = MDSSettings(raw_url=str(tables), out_url=str(tmp_path / "out-tables"), fields=["uid"])
    report = build(settings, workers=1, progress=False)
    assert report.ok and len(report.built) == 1 and len(MDSDataset(settings.out_url)) == 12


def test_a_run_listing_that_puts_files_in_a_partition_not_theirs_is_refused(instance, tmp_path):
    from mds_assets.runs import run_config

    from .test_assets import job

    small_files(tmp_path / "raw", 3)
    settings = grouped(tmp_path)
    (group,) = settings.raw_groups()
    config = run_config(settings, [group])
    for entry in config["ops"]["batch_pipeline"]["config"]["batches"]:
        entry["partition"] = "hour-0000"  # the first file's own key: not the key of these three files
    instance.add_dynamic_partitions("raw_batches", ["hour-0000"])
    result = job("build_partition", settings).execute_in_process(
        run_config={"ops": config["ops"]}, partition_key="hour-0000", instance=instance, raise_on_error=False
    )
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert f"whose files they are not (their partition is {group.partition_key!r})" in str(
        failure.step_failure_data.error
    )
    assert not (tmp_path / "out" / "partitions" / "hour-0000").exists()
