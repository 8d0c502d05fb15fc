"""Partitions as groups of raw files (core.grouping): sized by bytes, stable under change, readable keys."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from mds_assets.core.grouping import (
    FILE_OPEN_BYTES,
    RawGroup,
    default_partition_bytes,
    ends_segment,
    group_batches,
    weight,
)
from mds_assets.core.layout import check_partition_key
from mds_assets.core.raw_sources import RawBatch

CAP = 1 << 20


def batch(name: str, size: int = 100, fingerprint: str = "f") -> RawBatch:
    return RawBatch(f"{name}.jsonl", f"/raw/{name}.jsonl", "jsonl", fingerprint, size)


def names(groups: list[RawGroup]) -> list[tuple[str, ...]]:
    return [tuple(member.name for member in group.members) for group in groups]


def listing(sizes: dict[str, int]) -> list[RawBatch]:
    return sorted((batch(name, size) for name, size in sizes.items()), key=lambda b: b.partition_key)


def test_small_neighbouring_files_form_one_partition_and_a_large_file_is_one_of_its_own():
    cap = 64 << 20
    files = [batch(f"a{n:03}") for n in range(5)] + [batch("b-large", cap)] + [batch(f"c{n:03}") for n in range(5)]
    assert names(group_batches(files, cap)) == [
        tuple(f"a{n:03}.jsonl" for n in range(5)),
        ("b-large.jsonl",),
        tuple(f"c{n:03}.jsonl" for n in range(5)),
    ]


def test_no_group_weighs_more_than_the_cap_unless_it_is_one_file():
    rng = random.Random(7)
    files = listing({f"f{n:05}": rng.choice([0, 100, 50_000, 300_000, 2 * CAP]) for n in range(2000)})
    groups = group_batches(files, CAP)
    assert [m for g in groups for m in g.members] == files  # every file, once, in order
    for group in groups:
        assert len(group.members) == 1 or sum(map(weight, group.members)) <= CAP
    assert max(len(g.members) for g in groups) <= CAP // FILE_OPEN_BYTES  # many empty files still split


def test_a_group_key_names_its_first_file_count_and_members_and_only_changes_with_the_member_list():
    group = RawGroup((batch("hour-0001"), batch("hour-0002"), batch("hour-0003")))
    assert (
        group.partition_key.startswith("hour-0001_3_files-")
        and len(group.partition_key) == len("hour-0001_3_files-") + 8
    )
    changed_content = RawGroup((batch("hour-0001", fingerprint="g"), batch("hour-0002"), batch("hour-0003")))
    assert changed_content.partition_key == group.partition_key
    assert changed_content.fingerprint != group.fingerprint  # rebuilt in place
    other_members = RawGroup((batch("hour-0001"), batch("hour-0002"), batch("hour-0004")))
    assert other_members.partition_key != group.partition_key
    assert RawGroup((batch("solo"),)).partition_key == "solo"  # one file: its own key, as a file's
    long = RawGroup((batch("x" * 120), batch("y")))
    assert check_partition_key(long.partition_key) and len(long.partition_key) <= 128


def test_the_default_partition_is_a_few_shards():
    assert default_partition_bytes(16 << 20) == 64 << 20


def natural_cut_after(files: list[RawBatch], index: int, cap: int) -> bool:
    """A cut after files[index] that no other file decides: its own hash, or a large file either side."""
    here = files[index]
    following = files[index + 1] if index + 1 < len(files) else None
    return ends_segment(here, cap) or weight(here) >= cap or (following is not None and weight(following) >= cap)


def segment_around(files: list[RawBatch], gap: int, cap: int) -> list[RawBatch]:
    """The natural segment of `files` that a file inserted before files[gap] lands in: the only
    files whose groups the insertion may change."""
    start = gap  # back to a cut the file before the gap makes itself (a cut before a large file moves)
    while start > 0 and not (ends_segment(files[start - 1], cap) or weight(files[start - 1]) >= cap):
        start -= 1
    end = gap  # exclusive
    while end < len(files) and not natural_cut_after(files, end, cap):
        end += 1
    return files[start : min(end + 1, len(files))]


sizes = st.one_of(st.integers(0, 5_000), st.integers(0, CAP // 3), st.integers(CAP // 2, 2 * CAP))
listings = st.dictionaries(st.text("abcdefgh", min_size=1, max_size=6), sizes, min_size=0, max_size=60)


@settings(max_examples=300, deadline=None)
@given(listings, st.text("abcdefgh", min_size=1, max_size=6), sizes)
def test_a_new_file_changes_only_the_groups_of_its_own_natural_segment(before, new_name, new_size):
    """Groups that end before the new file's natural segment or start after it keep their
    members (and so their keys and built datasets); the changed groups are at most those of
    the segment, at most 4 x its weight / cap + 2 of them, typically one or two."""
    if new_name in before:
        return
    old_files = listing(before)
    new_files = listing({**before, new_name: new_size})
    old_groups, new_groups = names(group_batches(old_files, CAP)), names(group_batches(new_files, CAP))
    gap = sum(1 for f in old_files if f.partition_key < new_name)
    segment = segment_around(old_files, gap, CAP) + [batch(new_name, new_size)]
    region = {f.name for f in segment}
    outside_old = [g for g in old_groups if not region & set(g)]
    outside_new = [g for g in new_groups if not region & set(g)]
    assert outside_old == outside_new
    changed = [g for g in new_groups if g not in old_groups]
    assert 1 <= len(changed) <= 4 * sum(map(weight, segment)) // CAP + 2


def test_one_more_file_typically_rebuilds_one_or_two_groups():
    """Measured over random listings of many small files: the mean number of changed groups."""
    rng = random.Random(11)
    changes = []
    for trial in range(40):
        files = {f"t{trial}-{rng.randrange(10**9):09}": rng.randrange(1_000, 40_000) for _ in range(400)}
        old = names(group_batches(listing(files), CAP))
        new = names(group_batches(listing({**files, f"t{trial}-{rng.randrange(10**9):09}": 5_000}), CAP))
        changes.append(len([g for g in new if g not in old]))
    assert sum(changes) / len(changes) <= 2.0 and max(changes) <= 6
