"""A batch is checked where its file is opened, not only where the raw folder is listed: a link
re-pointed out of the raw root after the listing, or typed into a run's `batches` config, is
refused naming it, and nothing of the file it points to is published."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from dagster import DagsterInstance

from mds_assets.build import materialise_range
from mds_assets.core.grouping import RawGroup
from mds_assets.core.layout import partition_url
from mds_assets.core.raw_sources import RawBatch, RawDataError, list_batches, read_records
from mds_assets.partitions import RAW_BATCHES
from mds_assets.resources import MDSSettings

SECRET = "the contents of a file outside the raw root"


@pytest.fixture
def raw_and_outside(tmp_path: Path) -> tuple[Path, Path]:
    raw, outside = tmp_path / "raw", tmp_path / "outside"
    raw.mkdir()
    outside.mkdir()
    (raw / "a.jsonl").write_text(json.dumps({"uid": "a", "text": "inside"}) + "\n")
    (raw / ".archive").mkdir()  # hidden, so no batch: a link to a file in it is the file's one batch
    (raw / ".archive" / "b.jsonl").write_text(json.dumps({"uid": "b", "text": "inside"}) + "\n")
    (outside / "secret.jsonl").write_text(json.dumps({"uid": "s", "text": SECRET}) + "\n")
    (outside / "tree").mkdir()
    (outside / "tree" / "s.txt").write_text(SECRET)
    return raw, outside


def settings_for(raw: Path, tmp_path: Path) -> MDSSettings:
    return MDSSettings(raw_url=str(raw), out_url=str(tmp_path / "out"), fields=["uid", "text"])


def build_listed(batches: list[RawBatch], settings: MDSSettings, instance: DagsterInstance) -> dict[str, str | None]:
    """One partition run given this listing (as the sensor and `mds-assets build` hand it over)."""
    groups = [RawGroup((batch,)) for batch in batches]  # one file each, as a file of its own is grouped
    instance.add_dynamic_partitions(RAW_BATCHES, [group.partition_key for group in groups])
    return materialise_range(groups, settings.model_dump(), instance)


def published_text(tmp_path: Path) -> bytes:
    out = tmp_path / "out"
    return b"".join(path.read_bytes() for path in out.rglob("*") if path.is_file()) if out.exists() else b""


def test_a_link_re_pointed_out_of_the_raw_root_after_listing_is_refused_when_read(
    raw_and_outside: tuple[Path, Path],
) -> None:
    raw, outside = raw_and_outside
    (raw / "b.jsonl").symlink_to(raw / ".archive" / "b.jsonl")  # inside the root when listed
    (batch,) = [b for b in list_batches(str(raw)) if b.partition_key == "b"]
    assert batch.layout == "jsonl"
    (raw / "b.jsonl").unlink()
    (raw / "b.jsonl").symlink_to(outside / "secret.jsonl")  # re-pointed before the read
    with pytest.raises(RawDataError, match=r"batch b.jsonl: a symbolic link to .*outside the raw root") as error:
        list(read_records(batch))
    assert SECRET not in str(error.value)


def test_a_linked_folder_re_pointed_out_of_the_raw_root_after_listing_is_refused(
    raw_and_outside: tuple[Path, Path],
) -> None:
    raw, outside = raw_and_outside
    (raw / ".real").mkdir()
    (raw / ".real" / "x.txt").write_text("inside")
    (raw / "pics").symlink_to(raw / ".real")
    (batch,) = [b for b in list_batches(str(raw)) if b.partition_key == "pics"]
    (raw / "pics").unlink()
    (raw / "pics").symlink_to(outside / "tree")
    with pytest.raises(RawDataError, match=r"batch pics.*outside the raw root"):
        list(read_records(batch))


def test_a_listing_handed_to_a_later_run_does_not_publish_a_link_re_pointed_since(
    raw_and_outside: tuple[Path, Path], tmp_path: Path, instance: DagsterInstance
) -> None:
    raw, outside = raw_and_outside
    (raw / "b.jsonl").symlink_to(raw / ".archive" / "b.jsonl")
    settings = settings_for(raw, tmp_path)
    listing = [b for b in list_batches(str(raw)) if b.partition_key == "b"]  # what a sensor hands its run
    (raw / "b.jsonl").unlink()
    (raw / "b.jsonl").symlink_to(outside / "secret.jsonl")
    errors = build_listed(listing, settings, instance)
    assert errors["b"] is not None and "outside the raw root" in errors["b"], errors
    assert SECRET.encode() not in published_text(tmp_path)


def test_a_link_typed_into_a_runs_batches_config_as_jsonl_is_refused(
    raw_and_outside: tuple[Path, Path], tmp_path: Path, instance: DagsterInstance
) -> None:
    raw, outside = raw_and_outside
    (raw / "evil.jsonl").symlink_to(outside / "secret.jsonl")
    typed = RawBatch(
        name="evil.jsonl", url=str(raw / "evil.jsonl"), layout="jsonl", fingerprint="typed", size=10
    )  # as typed in the launchpad: the listing would have marked it refused
    errors = build_listed([typed], settings_for(raw, tmp_path), instance)
    assert errors["evil"] is not None and "outside the raw root" in errors["evil"], errors
    assert "evil.jsonl" in errors["evil"]
    assert SECRET.encode() not in published_text(tmp_path)
    assert not Path(partition_url(str(tmp_path / "out"), "evil")).exists()


def test_a_typed_listing_that_calls_a_folder_a_jsonl_file_is_read_as_what_it_is(
    raw_and_outside: tuple[Path, Path], tmp_path: Path, instance: DagsterInstance
) -> None:
    raw, outside = raw_and_outside
    (raw / "tree").symlink_to(outside / "tree")
    listed = dataclasses.asdict(next(b for b in list_batches(str(raw)) if b.partition_key == "tree"))
    typed = RawBatch(**{**listed, "layout": "filetree", "problem": ""})  # "refused" typed away
    errors = build_listed([typed], settings_for(raw, tmp_path), instance)
    assert errors["tree"] is not None and "outside the raw root" in errors["tree"], errors
    assert SECRET.encode() not in published_text(tmp_path)
