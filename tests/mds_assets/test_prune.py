"""One Dagster instance holds one dataset; `mds-assets prune` removes partitions whose raw batch
is gone, so the next publish leaves them out (a renamed batch is never published twice)."""

from __future__ import annotations

import shutil
from pathlib import Path

from dagster import DagsterInstance

from mds_assets.cli import main
from mds_assets.partitions import RAW_BATCHES
from mds_assets.resources import MDSSettings
from writer import MDSDataset

from ..commands import build_arguments
from .conftest import FIELDS, record, snapshot, write_batch


def build_command(settings: MDSSettings) -> list[str]:
    # one partition per file (`--partition-bytes 1`): pruning is about the files each partition holds
    return [*build_arguments(settings.raw_url, settings.out_url, FIELDS), "--quiet", "--partition-bytes", "1"]


def prune_command(settings: MDSSettings) -> list[str]:
    return ["prune", "--raw", settings.raw_url, "--out", settings.out_url]


def uids(settings: MDSSettings) -> list[str]:
    return [sample["uid"].decode() for sample in MDSDataset(settings.out_url)]


def test_a_build_of_another_raw_out_pair_is_refused_naming_the_instances_pair(
    instance: DagsterInstance, settings, tmp_path, capsys
):
    assert main(build_command(settings)) == 0
    other_raw = tmp_path / "other-raw"
    write_batch(other_raw, "x.jsonl", [record(9, n) for n in range(3)])
    other = MDSSettings(**{**settings.model_dump(), "raw_url": str(other_raw), "out_url": str(tmp_path / "other")})
    assert main(build_command(other)) == 1
    error = capsys.readouterr().err
    assert settings.raw_url in error and settings.out_url in error and "DAGSTER_HOME" in error, error
    assert sorted(instance.get_dynamic_partitions(RAW_BATCHES)) == ["batch-0", "batch-1", "batch-2"]
    assert not (tmp_path / "other").exists()


def test_prune_removes_partitions_whose_batch_is_gone_and_the_next_publish_leaves_them_out(
    instance: DagsterInstance, settings, raw_dir, capsys
):
    assert main(build_command(settings)) == 0
    (raw_dir / "batch-1.jsonl").unlink()
    assert main(build_command(settings)) == 0
    assert "batch-1" in capsys.readouterr().out  # said: it stays published until pruned
    assert main(prune_command(settings)) == 0
    assert "batch-1" in capsys.readouterr().out
    assert not (Path(settings.out_url) / "partitions" / "batch-1").exists()
    assert sorted(instance.get_dynamic_partitions(RAW_BATCHES)) == ["batch-0", "batch-2"]
    assert main(build_command(settings)) == 0
    assert uids(settings) == [f"{b}-{n}" for b in (0, 2) for n in range(40)]


def test_a_renamed_batch_is_not_published_twice_and_prune_fixes_it(instance, settings, raw_dir, capsys):
    assert main(build_command(settings)) == 0
    published = {name: data for name, data in snapshot(Path(settings.out_url)).items() if "/" not in name}
    shutil.move(raw_dir / "batch-1.jsonl", raw_dir / "batch-1-renamed.jsonl")
    capsys.readouterr()
    assert main(build_command(settings)) == 1
    error = capsys.readouterr().err
    assert "batch-1" in error and "twice" in error and "prune" in error, error
    assert {n: d for n, d in snapshot(Path(settings.out_url)).items() if "/" not in n} == published
    assert main(prune_command(settings)) == 0
    assert main(build_command(settings)) == 0
    assert sorted(uids(settings)) == sorted(f"{b}-{n}" for b in range(3) for n in range(40))


def test_prune_refuses_to_remove_every_partition_when_the_raw_url_lists_no_batch(
    instance: DagsterInstance, settings, raw_dir, capsys
):
    """An empty listing is more often a mount not ready or files moved away than every batch
    deleted on purpose: nothing is removed unless asked for by name."""
    assert main(build_command(settings)) == 0
    before = snapshot(Path(settings.out_url))
    for batch in raw_dir.iterdir():
        batch.unlink()
    capsys.readouterr()
    assert main(prune_command(settings)) == 1
    error = capsys.readouterr().err
    assert f"the raw URL {settings.raw_url} lists no raw batch" in error, error
    assert "would remove every partition (3)" in error and "--allow-empty-raw" in error, error
    assert snapshot(Path(settings.out_url)) == before
    assert sorted(instance.get_dynamic_partitions(RAW_BATCHES)) == ["batch-0", "batch-1", "batch-2"]
    assert main([*prune_command(settings), "--allow-empty-raw"]) == 0
    assert not any((Path(settings.out_url) / "partitions").iterdir())
    assert instance.get_dynamic_partitions(RAW_BATCHES) == []


def test_the_same_dataset_named_by_another_spelling_of_its_local_urls_is_the_same_dataset(
    instance: DagsterInstance, settings, capsys
):
    assert main(build_command(settings)) == 0
    respelled = MDSSettings(
        **{**settings.model_dump(), "raw_url": f"file://{settings.raw_url}/", "out_url": f"{settings.out_url}/"}
    )
    capsys.readouterr()
    assert main(build_command(respelled)) == 0, capsys.readouterr().err
    assert "partitions built: 0, unchanged: 3" in capsys.readouterr().out


def test_a_refused_pair_says_a_typo_is_corrected_and_another_dataset_gets_its_own_instance(
    instance: DagsterInstance, settings, tmp_path, capsys
):
    assert main(build_command(settings)) == 0
    typo = MDSSettings(**{**settings.model_dump(), "raw_url": settings.raw_url + "x"})
    Path(typo.raw_url).mkdir()
    capsys.readouterr()
    assert main(build_command(typo)) == 1
    error = capsys.readouterr().err
    assert "If it is the same dataset, give these URLs" in error and "DAGSTER_HOME" in error, error


def hourly_files(tmp_path: Path, partition_bytes: str) -> tuple[Path, MDSSettings, list[str]]:
    """Five small files of 3 records (raw folder, settings, the build command grouping them)."""
    raw = tmp_path / "raw"
    for number in range(5):
        write_batch(raw, f"hour-{number:04}.jsonl", [record(number, n) for n in range(3)])
    settings = MDSSettings(raw_url=str(raw), out_url=str(tmp_path / "out"), fields=FIELDS)
    grouped = [*build_arguments(raw, settings.out_url, FIELDS), "--quiet", "--partition-bytes", partition_bytes]
    return raw, settings, grouped


def test_files_renamed_into_other_groups_are_not_published_twice(instance, tmp_path, capsys):
    raw, settings, grouped = hourly_files(tmp_path, "300KiB")
    assert main(grouped) == 0
    before = set((tmp_path / "out" / "partitions").iterdir())
    published = {name: data for name, data in snapshot(Path(settings.out_url)).items() if "/" not in name}
    for path in raw.iterdir():  # every file renamed: the same records, grouped anew by their new names
        path.rename(raw / f"2024-{path.name}")
    capsys.readouterr()
    assert main(grouped) == 1
    error = capsys.readouterr().err
    assert "hour-0000.jsonl" in error and "twice" in error and "prune" in error, error
    assert {n: d for n, d in snapshot(Path(settings.out_url)).items() if "/" not in n} == published
    assert main(prune_command(settings)) == 0
    assert not before & set((tmp_path / "out" / "partitions").iterdir())
    assert main(grouped) == 0
    assert sorted(uids(settings)) == sorted(f"{b}-{n}" for b in range(5) for n in range(3))


def test_a_file_renamed_inside_its_group_is_published_once_under_its_new_name(instance, tmp_path):
    raw, settings, grouped = hourly_files(tmp_path, "64MB")
    assert main(grouped) == 0
    (raw / "hour-0002.jsonl").rename(raw / "hour-0002-renamed.jsonl")  # its group keeps the other four files
    assert main(grouped) == 0
    assert sorted(uids(settings)) == sorted(f"{b}-{n}" for b in range(5) for n in range(3))
