"""Which partitions are current, for many groups at once: one listing of <out>/partitions/, stamps read concurrently."""

import threading

import pytest

from mds_assets.core import stamps
from mds_assets.core.grouping import group_batches
from mds_assets.core.partition_writer import write_partition
from mds_assets.core.raw_sources import list_batches
from mds_assets.resources import MDSSettings
from writer.storage import Storage

from .conftest import FIELDS, record, write_batch


def test_staleness_of_many_groups_lists_the_partitions_once_and_reads_stamps_concurrently(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    for number in range(12):
        write_batch(raw, f"b{number:02}.jsonl", [record(number, n) for n in range(2)])
    settings = MDSSettings(raw_url=str(raw), out_url=str(tmp_path / "out"), fields=FIELDS, partition_bytes=1)
    groups = group_batches(list_batches(str(raw)), settings.partition_size())
    built = groups[::2]
    for group in built:
        write_partition(group, settings.selections(), settings.out_url, settings.shard_size_limit, None)
    write_batch(raw, "b04.jsonl", [record(4, 0)])  # changed since its partition was built
    groups = group_batches(list_batches(str(raw)), settings.partition_size())

    listings: list[str] = []
    real_entries = Storage.entries

    def counted_entries(storage: Storage) -> dict[str, tuple[str, int]]:
        listings.append(storage.root)
        return real_entries(storage)

    two_at_once = threading.Barrier(2, timeout=10)  # broken (and the test failed) unless two reads overlap
    stamp_reads: list[str] = []
    lock = threading.Lock()
    real_read_stamp = stamps.read_stamp

    def overlapping_read_stamp(url: str, options: dict | None) -> dict | None:
        with lock:
            stamp_reads.append(url)
            first_two = len(stamp_reads) <= 2
        if first_two:
            two_at_once.wait()
        return real_read_stamp(url, options)

    monkeypatch.setattr(Storage, "entries", counted_entries)
    monkeypatch.setattr(stamps, "read_stamp", overlapping_read_stamp)
    current = stamps.current_partitions(groups, settings)
    assert current == {group.partition_key for group in built} - {"b04"}
    assert listings.count(str(tmp_path / "out" / "partitions")) == 1  # one listing of <out>/partitions/
    assert len(stamp_reads) == len(built)  # no request for a partition that has no folder


def test_a_regrouping_half_built_holds_the_publish_naming_the_files_and_a_file_gone_is_dropped(tmp_path):
    from mds_assets.core.grouping import RawGroup
    from mds_assets.core.superseded import RegroupingNotBuilt, partitions_kept

    raw, out = tmp_path / "raw", str(tmp_path / "out")
    for name in ("a", "b"):
        write_batch(raw, f"{name}.jsonl", [record(1, 0)])
    a, b = list_batches(str(raw))
    selections = MDSSettings(raw_url=str(raw), out_url=out, fields=FIELDS).selections()
    old, new = RawGroup((a, b)), RawGroup((a,))
    write_partition(old, selections, out, 1000, None)
    write_partition(new, selections, out, 1000, None)  # built later: it holds a.jsonl
    keys = sorted([old.partition_key, new.partition_key])
    with pytest.raises(RegroupingNotBuilt, match=r"the new partitions of b\.jsonl are not built yet"):
        partitions_kept(out, str(raw), keys, None)
    (raw / "b.jsonl").unlink()  # gone from the raw URL: it leaves with its old partition
    assert partitions_kept(out, str(raw), keys, None) == ([new.partition_key], [old.partition_key])
