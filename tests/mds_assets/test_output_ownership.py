"""An output folder holding data mds-assets did not write is refused before any change, by
`mds-assets build` and by runs launched from the UI; `--adopt-output` takes over an `.mds` dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance

from mds_assets.cli import main
from mds_assets.resources import MDSSettings
from mds_assets.runs import first_error, run_job
from writer import MDSDataset

from ..commands import build_arguments
from ..writer.composer_reference import composer_writer
from .conftest import FIELDS, record, snapshot, write_batch


def composer_dataset(folder: Path, samples: int = 300) -> None:
    """A dataset written by Composer's own StreamingDatasetWriter (no sidecars of this project)."""
    writer = composer_writer().StreamingDatasetWriter(str(folder), ["uid", "data"], 4096)
    writer.write_samples(({"uid": f"c{n}".encode(), "data": bytes(50)} for n in range(samples)), use_tqdm=False)
    writer.finish()


def foreign_folder(folder: Path) -> None:
    """Somebody's files: notes, a JSON document, a subfolder, and a stray shard."""
    (folder / "keep").mkdir(parents=True)
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "index.json").write_text('{"mine": true}\n')
    (folder / "keep" / "file").write_text("keep me\n")
    (folder / "000099.mds").write_bytes(b"\x00" * 64)


def build_command(settings: MDSSettings, *options: str) -> list[str]:
    return [*build_arguments(settings.raw_url, settings.out_url, FIELDS), "--quiet", *options]


def test_a_composer_dataset_at_out_is_refused_and_kept(instance, settings, capsys):
    out = Path(settings.out_url)
    composer_dataset(out)
    before = snapshot(out)
    assert main(build_command(settings)) == 1
    error = capsys.readouterr().err
    assert "index.mds" in error and "--adopt-output" in error, error
    assert snapshot(out) == before
    assert len(MDSDataset(str(out))) == 300


def test_a_folder_of_other_files_is_refused_naming_them_and_nothing_is_deleted(instance, settings, capsys):
    out = Path(settings.out_url)
    foreign_folder(out)
    before = snapshot(out)
    assert main(build_command(settings)) == 1
    error = capsys.readouterr().err
    for name in ("notes.txt", "index.json", "keep/", "000099.mds"):
        assert name in error, error
    assert snapshot(out) == before
    assert main(build_command(settings, "--adopt-output")) == 1, "no .mds dataset there: nothing to adopt"
    assert snapshot(out) == before


def test_adopt_output_takes_over_a_composer_dataset(instance, settings, capsys):
    out = Path(settings.out_url)
    composer_dataset(out)
    assert main(build_command(settings, "--adopt-output")) == 0, capsys.readouterr().err
    assert len(MDSDataset(str(out))) == 120
    assert main(build_command(settings)) == 0, "once adopted, the output is this project's"


def test_an_output_this_project_published_builds_again(instance, settings, raw_dir, capsys):
    assert main(build_command(settings)) == 0
    write_batch(raw_dir, "batch-3.jsonl", [record(3, n) for n in range(5)])
    assert main(build_command(settings)) == 0, capsys.readouterr().err
    assert len(MDSDataset(settings.out_url)) == 125


@pytest.mark.parametrize("make", [composer_dataset, foreign_folder])
def test_a_run_launched_from_the_ui_refuses_the_folder_too(instance: DagsterInstance, settings, make):
    out = Path(settings.out_url)
    make(out)
    before = snapshot(out)
    instance.add_dynamic_partitions("raw_batches", ["batch-0"])
    result = run_job("build_partition", settings, instance, partitions=("batch-0", "batch-0"))
    assert not result.success
    assert "did not write" in first_error(result)
    assert snapshot(out) == before
