"""Publishing MDS v2 datasets by reference: one `index.json` over shards where they are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from writer.lock import DatasetLock, DatasetLockedError
from writer.reference_index import IndexReferenceError, V2Index, publish_by_reference
from writer.storage import Storage

from ..faults import count_changes, fail_at, snapshot
from ..v2_indexes import read_json, write_v2_dataset


def sources(root: Path, samples: dict[str, list[int]]) -> list[str]:
    urls = []
    for key, shard_samples in samples.items():
        url = str(root / "partitions" / key)
        write_v2_dataset(url, shard_samples)
        urls.append(url)
    return urls


def data_changes(changes: list[str]) -> list[str]:
    """The storage changes other than taking and releasing locks (which make their folder)."""
    return [c for c in changes if not c.endswith("/.mds-lock") and not c.startswith("makedirs ")]


def test_the_index_lists_every_sources_shards_under_its_path_relative_to_the_target(tmp_path):
    urls = sources(tmp_path, {"a": [3, 4], "b": [5]})
    own = [read_json(f"{url}/index.json")["shards"] for url in urls]
    result = publish_by_reference(urls, str(tmp_path))
    published = read_json(f"{tmp_path}/index.json")
    assert published["version"] == 2 and result.changed and result.index.samples == 12
    assert [s["raw_data"]["basename"] for s in published["shards"]] == [
        "partitions/a/shard.00000.mds",
        "partitions/a/shard.00001.mds",
        "partitions/b/shard.00000.mds",
    ]
    for shard, source in zip(published["shards"], own[0] + own[1]):  # sizes, hashes, columns: as the sources say
        assert {**shard, "raw_data": None} == {**source, "raw_data": None}
        assert shard["raw_data"]["bytes"] == source["raw_data"]["bytes"]
        assert shard["raw_data"]["hashes"] == source["raw_data"]["hashes"]


def test_publishing_writes_one_file_and_places_no_shard(tmp_path):
    urls = sources(tmp_path, {"a": [3, 4], "b": [5]})
    before = {p: p.stat().st_ino for p in tmp_path.rglob("*.mds")}
    changes = count_changes(lambda: publish_by_reference(urls, str(tmp_path)))
    assert data_changes(changes) == [f"write {tmp_path}/index.json"], changes
    assert {p: p.stat().st_ino for p in tmp_path.rglob("*.mds")} == before  # no link, no copy, no new shard
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json", "partitions"]


def test_publishing_the_same_dataset_again_writes_nothing(tmp_path):
    urls = sources(tmp_path, {"a": [3], "b": [5]})
    publish_by_reference(urls, str(tmp_path))
    changes: list[str] = []
    changes = count_changes(lambda: changes.append(str(publish_by_reference(urls, str(tmp_path)).changed)))
    assert changes and data_changes(changes) == []


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: (p / "partitions/b/shard.00000.mds").unlink(), "partitions/b/shard.00000.mds is missing"),
        (lambda p: (p / "partitions/b/shard.00000.mds").write_bytes(b"short"), "holds 5 bytes, its index says 300"),
        (lambda p: (p / "partitions/b/index.json").unlink(), "partitions/b/index.json is missing"),
    ],
)
def test_a_source_not_stored_whole_is_refused_by_name_and_the_published_index_stays(tmp_path, damage, message):
    urls = sources(tmp_path, {"a": [3], "b": [5]})
    publish_by_reference(urls[:1], str(tmp_path))
    before = (tmp_path / "index.json").read_bytes()
    damage(tmp_path)
    with pytest.raises(IndexReferenceError, match=message):
        publish_by_reference(urls, str(tmp_path))
    assert (tmp_path / "index.json").read_bytes() == before


def test_sources_with_other_columns_are_refused_naming_the_source(tmp_path):
    write_v2_dataset(str(tmp_path / "partitions/a"), [2])
    write_v2_dataset(str(tmp_path / "partitions/b"), [2], columns=("a", "b"))
    with pytest.raises(IndexReferenceError, match="shard 0 of partitions/b has column_names"):
        publish_by_reference([str(tmp_path / "partitions/a"), str(tmp_path / "partitions/b")], str(tmp_path))
    assert not (tmp_path / "index.json").exists()


def test_a_source_outside_the_target_is_refused(tmp_path):
    write_v2_dataset(str(tmp_path / "elsewhere"), [2])
    with pytest.raises(IndexReferenceError, match="is not under"):
        publish_by_reference([str(tmp_path / "elsewhere")], str(tmp_path / "out"))


@pytest.mark.parametrize("basename", ["../x.mds", "/etc/passwd", "a/../../x.mds", "a//b.mds", ""])
def test_a_basename_that_leaves_its_dataset_is_refused(tmp_path, basename):
    shards = write_v2_dataset(str(tmp_path / "partitions/a"), [2])
    shards[0]["raw_data"]["basename"] = basename
    (tmp_path / "partitions/a/index.json").write_text(json.dumps({"shards": shards, "version": 2}))
    with pytest.raises(IndexReferenceError, match="basename"):
        publish_by_reference([str(tmp_path / "partitions/a")], str(tmp_path))


@pytest.mark.parametrize("data", [b"{", b"[]", b'{"version": 1, "shards": []}', b'{"version": 2, "shards": [1]}'])
def test_an_index_that_is_not_mds_v2_is_refused_naming_the_file(data):
    with pytest.raises(IndexReferenceError, match="where/index.json"):
        V2Index.parse(data, "where/index.json")


def test_a_failed_index_write_leaves_the_previous_index_byte_for_byte_and_says_so(tmp_path):
    urls = sources(tmp_path, {"a": [3], "b": [5]})
    publish_by_reference(urls[:1], str(tmp_path))
    before = snapshot(str(tmp_path))
    write_step = next(
        k
        for k, change in enumerate(count_changes(lambda: publish_by_reference(urls, str(tmp_path))), 1)
        if change.endswith("/index.json")
    )
    (tmp_path / "index.json").write_bytes(before["index.json"])  # the dry run published: back to before
    with fail_at(write_step), pytest.raises(OSError) as raised:
        publish_by_reference(urls, str(tmp_path))
    assert "is unchanged" in str(raised.value) and "injected fault" in str(raised.value)
    assert snapshot(str(tmp_path)) == before


def test_a_source_another_process_holds_fails_the_publish_and_no_lock_is_left_behind(tmp_path):
    urls = sources(tmp_path, {key: [2] for key in "abcdefgh"})
    with DatasetLock(Storage(urls[3]), "a rebuild of d"):
        with pytest.raises(DatasetLockedError, match="partitions/d is locked by a rebuild of d"):
            publish_by_reference(urls, str(tmp_path))
    assert not list(tmp_path.rglob(".mds-lock")) and not (tmp_path / "index.json").exists()
    assert publish_by_reference(urls, str(tmp_path)).index.samples == 16
