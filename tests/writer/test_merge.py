"""Merging datasets: order, no re-encoding, idempotence, and a crash never publishes wrong shards."""

import os

import pytest

from writer import MDSDataset, StreamingDatasetWriter
from writer.merge import MergeError, MergePlan, merge_datasets
from writer.storage import Storage
from writer.verify import verify


def make_parts(root, count=3, compression=None, fields=("a",)):
    urls = []
    for part in range(count):
        url = str(root / f"part{part}")
        with StreamingDatasetWriter(url, list(fields), shard_size_limit=60, compression=compression) as writer:
            for number in range(6):
                writer.write_sample({field: f"{part}:{number}".encode() * (number + 1) for field in fields})
        urls.append(url)
    return urls


def samples(url):
    return [sample["a"] for sample in MDSDataset(url)]


@pytest.mark.parametrize("compression", [None, "gz"])
def test_merge_publishes_every_sample_in_source_order_by_hard_link(tmp_path, compression):
    parts = make_parts(tmp_path, compression=compression)
    result = merge_datasets(parts, str(tmp_path / "out"))
    assert samples(str(tmp_path / "out")) == [s for part in parts for s in samples(part)]
    assert result.placement == "hard link" and result.changed
    first = MDSDataset(parts[0]).shard_file(0)
    assert os.path.samefile(tmp_path / "part0" / first, tmp_path / "out" / first)
    assert verify(str(tmp_path / "out")).ok


def test_merging_again_changes_nothing(tmp_path):
    parts = make_parts(tmp_path)
    merge_datasets(parts, str(tmp_path / "out"))
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()}
    assert not merge_datasets(parts, str(tmp_path / "out")).changed
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()} == stamps


def test_fewer_sources_remove_the_stale_shards(tmp_path):
    parts = make_parts(tmp_path)
    merge_datasets(parts, str(tmp_path / "out"))
    merge_datasets(parts[:1], str(tmp_path / "out"))
    assert samples(str(tmp_path / "out")) == samples(parts[0])
    notes = verify(str(tmp_path / "out")).notes  # no unused shard files left (these parts record no encodings)
    assert notes == ["no column encodings recorded: values not decoded"], notes


def test_a_crash_while_placing_shards_never_leaves_a_wrong_index_and_a_rerun_repairs(tmp_path, monkeypatch):
    parts = make_parts(tmp_path)
    merge_datasets(parts[:2], str(tmp_path / "out"))
    previous = samples(str(tmp_path / "out"))
    real = Storage.link_or_copy
    calls = []

    def crash_on_third(self, source, source_name, name):
        calls.append(name)
        if len(calls) == 3:
            raise OSError("killed")
        return real(self, source, source_name, name)

    monkeypatch.setattr(Storage, "link_or_copy", crash_on_third)
    with pytest.raises(OSError, match="killed") as failure:
        merge_datasets(list(reversed(parts)), str(tmp_path / "out"))
    if (tmp_path / "out" / "index.mds").exists():
        assert samples(str(tmp_path / "out")) == previous and "is unchanged" in str(failure.value)
    else:
        assert "its index was removed" in str(failure.value)
    monkeypatch.setattr(Storage, "link_or_copy", real)
    merge_datasets(list(reversed(parts)), str(tmp_path / "out"))
    assert samples(str(tmp_path / "out")) == [s for part in reversed(parts) for s in samples(part)]
    assert verify(str(tmp_path / "out")).ok


def test_sources_with_other_fields_or_compression_are_refused_by_name(tmp_path):
    plain = make_parts(tmp_path / "plain", count=1)
    gz = make_parts(tmp_path / "gz", count=1, compression="gz")
    other = make_parts(tmp_path / "other", count=1, fields=("a", "b"))
    with pytest.raises(MergeError, match="gz/part0 is compressed gz:6"):
        merge_datasets(plain + gz, str(tmp_path / "out"))
    with pytest.raises(MergeError, match=r"other/part0 has fields \['a', 'b'\]"):
        merge_datasets(plain + other, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_memory_filesystem_merges_by_server_side_copy(tmp_path):
    urls = []
    for part in range(2):
        url = f"memory://merge-{tmp_path.name}/part{part}"
        with StreamingDatasetWriter(url, ["a"]) as writer:
            writer.write_sample({"a": b"%d" % part})
        urls.append(url)
    result = merge_datasets(urls, f"memory://merge-{tmp_path.name}/out")
    assert result.placement == "server-side copy"
    assert samples(f"memory://merge-{tmp_path.name}/out") == [b"0", b"1"]


def test_constant_size_sources_merge_into_a_constant_size_index(tmp_path):
    urls = []
    for part in range(2):
        url = str(tmp_path / f"fixed{part}")
        with StreamingDatasetWriter(url, ["a"]) as writer:
            writer.write_samples(({"a": b"%d" % part} for _ in range(5)), use_tqdm=False)
        urls.append(url)
    merge_datasets(urls, str(tmp_path / "out"))
    merged = MDSDataset(str(tmp_path / "out"))
    assert merged.index.size_format == 0
    assert samples(str(tmp_path / "out")) == [b"0"] * 5 + [b"1"] * 5


def test_a_source_that_lost_a_shard_is_refused_before_the_published_dataset_changes(tmp_path):
    parts = make_parts(tmp_path)
    merge_datasets(parts[:2], str(tmp_path / "out"))
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if p.is_file()}
    os.remove(tmp_path / "part1" / MDSDataset(parts[1]).shard_file(0))
    with pytest.raises(MergeError, match=r"part1/000000\.mds is missing: rebuild .*part1 before publishing it"):
        merge_datasets(parts, str(tmp_path / "out"))
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if p.is_file()} == before


def test_a_source_cannot_be_rebuilt_while_a_publish_reads_it(tmp_path, monkeypatch):
    from writer import merge as merging
    from writer.lock import DatasetLockedError

    parts = make_parts(tmp_path)
    real_apply, attempts = merging.apply, []

    def rebuild_part1_midway(plan):
        with pytest.raises(DatasetLockedError, match="locked by a publish"):
            with StreamingDatasetWriter(parts[1], ["a"], overwrite=True) as writer:
                writer.write_sample({"a": b"rebuilt"})
        attempts.append(True)
        return real_apply(plan)

    monkeypatch.setattr(merging, "apply", rebuild_part1_midway)
    merge_datasets(parts, str(tmp_path / "out"))
    assert attempts and verify(str(tmp_path / "out")).ok
    assert samples(str(tmp_path / "out")) == [s for part in parts for s in samples(part)]


def test_a_republish_over_many_published_shards_builds_the_set_of_new_names_once(tmp_path, monkeypatch):
    """Each published file is compared with the plan's names to find the stale ones: one set,
    not a set per file (quadratic in the shards: minutes at tens of thousands)."""
    parts = make_parts(tmp_path, count=6)
    merge_datasets(parts, str(tmp_path / "out"))
    published = MDSDataset(str(tmp_path / "out")).index.num_shards
    assert published >= 12
    built = []
    real = MergePlan.shard_names.fget
    monkeypatch.setattr(MergePlan, "shard_names", property(lambda plan: built.append(1) or real(plan)))
    assert merge_datasets(parts[:-1], str(tmp_path / "out")).changed
    assert samples(str(tmp_path / "out")) == [s for part in parts[:-1] for s in samples(part)]
    assert len(built) == 1


def test_a_republish_on_an_object_store_finds_the_shards_in_place_from_one_listing(tmp_path, monkeypatch):
    """Not a request per published shard (a HEAD each on S3: tens of thousands)."""
    root = f"memory://republish-{tmp_path.name}"
    parts = []
    for part in range(3):
        url = f"{root}/part{part}"
        with StreamingDatasetWriter(url, ["a"], shard_size_limit=60) as writer:
            writer.write_samples(({"a": b"%d:%d" % (part, n) * 8} for n in range(6)), use_tqdm=False)
        parts.append(url)
    merge_datasets(parts, f"{root}/out")
    with StreamingDatasetWriter(parts[2], ["a"], shard_size_limit=60, overwrite=True) as writer:
        writer.write_sample({"a": b"changed"})
    asked: list[str] = []
    real_size = Storage.size
    monkeypatch.setattr(Storage, "size", lambda storage, name: asked.append(name) or real_size(storage, name))
    result = merge_datasets(parts, f"{root}/out")
    assert result.changed and result.placement == "server-side copy"
    assert samples(f"{root}/out") == samples(parts[0]) + samples(parts[1]) + [b"changed"]
    assert asked == []
