"""The streaming format's generations: what is removed, and what never is."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from mds_assets.core.generations import generation_url, new_generation, remove_unreferenced_generations
from mds_assets.core.grouping import RawGroup
from mds_assets.core.raw_sources import list_batches
from mds_assets.core.selection import parse_fields
from mds_assets.core.streaming_partition import write_streaming_partition
from mds_assets.core.streaming_publish import publish_streaming
from writer import MDSDataset, MDSWriter
from writer.lock import DatasetLock, DatasetLockedError
from writer.storage import Storage

from .conftest import write_batch


def build_partition(tmp_path: Path, values: list[str]) -> Path:
    write_batch(tmp_path / "raw", "b.jsonl", [{"a": value} for value in values])
    (batch,) = list_batches(str(tmp_path / "raw"))
    write_streaming_partition(RawGroup((batch,)), parse_fields(["a"]), str(tmp_path / "out"), 200, None)
    return tmp_path / "out" / "partitions" / "b"


def generations(partition: Path) -> list[str]:
    return sorted(p.name for p in partition.iterdir() if p.is_dir())


def test_a_rebuild_keeps_the_published_generation_and_a_publish_removes_it(tmp_path):
    partition = build_partition(tmp_path, ["x"] * 5)
    publish_streaming(str(tmp_path / "out"), ["b"], None)
    (published,) = generations(partition)
    build_partition(tmp_path, ["y"] * 5)
    assert published in generations(partition) and len(generations(partition)) == 2
    build_partition(tmp_path, ["z"] * 5)  # the unpublished middle build is removed, the published one kept
    assert published in generations(partition) and len(generations(partition)) == 2
    publish_streaming(str(tmp_path / "out"), ["b"], None)
    assert published not in generations(partition) and len(generations(partition)) == 1
    assert [s["a"] for s in MDSDataset(str(tmp_path / "out"), decoders="auto")] == ["z"] * 5


def test_a_generation_a_writer_holds_is_never_removed(tmp_path):
    partition = build_partition(tmp_path, ["x"] * 5)
    running = generation_url(str(tmp_path / "out"), "b", new_generation())
    with MDSWriter(out=running, columns={"a": "str"}) as writer:  # another build of the partition, writing
        writer.write({"a": "w"})
        assert remove_unreferenced_generations(str(tmp_path / "out"), "b", None) == []
        assert Path(running).name in generations(partition)


def test_a_failed_builds_generation_is_removed_by_the_next_build(tmp_path):
    partition = build_partition(tmp_path, ["x"] * 5)
    crashed = partition / new_generation()
    crashed.mkdir()
    (crashed / "shard.00000.mds").write_bytes(b"half a shard")  # killed mid-write: no index, no lock
    build_partition(tmp_path, ["y"] * 5)
    assert crashed.name not in generations(partition)


def test_only_generation_folders_are_ever_removed(tmp_path):
    partition = build_partition(tmp_path, ["x"] * 5)
    (partition / "notes").mkdir()
    (partition / "notes" / "README").write_text("kept")
    build_partition(tmp_path, ["y"] * 5)
    assert (partition / "notes" / "README").read_text() == "kept"


def test_an_unreadable_published_index_removes_nothing_and_says_so(tmp_path):
    partition = build_partition(tmp_path, ["x"] * 5)
    publish_streaming(str(tmp_path / "out"), ["b"], None)
    build_partition(tmp_path, ["y"] * 5)
    before = generations(partition)
    (tmp_path / "out" / "index.json").write_text(json.dumps({"version": 2, "shards": "?"}))
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        assert remove_unreferenced_generations(str(tmp_path / "out"), "b", None) == []
    assert generations(partition) == before
    assert any("could not remove the unused generations" in str(w.message) for w in warned)


def test_a_rebuild_while_a_publish_holds_the_partition_fails_naming_it_and_the_next_build_tidies(tmp_path):
    partition = build_partition(tmp_path, ["x"] * 5)
    publish_streaming(str(tmp_path / "out"), ["b"], None)
    published = (tmp_path / "out" / "index.json").read_bytes()
    with DatasetLock(Storage(str(partition)), "a publish by reference into out"):  # a publish, mid-way
        with pytest.raises(DatasetLockedError, match="partitions/b is locked by a publish by reference"):
            build_partition(tmp_path, ["y"] * 5)
    assert (tmp_path / "out" / "index.json").read_bytes() == published
    assert [s["a"] for s in MDSDataset(str(partition), decoders="auto")] == ["x"] * 5  # the partition as it was
    assert len(generations(partition)) == 2  # the refused build's generation, referenced by no index
    build_partition(tmp_path, ["z"] * 5)
    publish_streaming(str(tmp_path / "out"), ["b"], None)
    assert len(generations(partition)) == 1
