"""How `mds-assets build` splits the partitions (groups of raw files) it must build into runs.

A run can build a range of partitions (first to last, in the order the partitions were
registered), so the batches to build are cut into contiguous ranges: one per worker when they
are contiguous (a first build, new batches, changed settings), more when batches that need no
build sit between them. Ranges are cut where their raw bytes balance, since bytes, not batch
count, is what a partition's build time follows.
"""

from __future__ import annotations

from collections.abc import Sequence

from .grouping import RawGroup


def contiguous_ranges(to_build: Sequence[RawGroup], order: Sequence[str], workers: int) -> list[list[RawGroup]]:
    """`to_build` as ranges of keys adjacent in `order`, split further by bytes up to `workers` ranges."""
    wanted = {batch.partition_key: batch for batch in to_build}
    ranges: list[list[RawGroup]] = []
    in_range = False
    for key in order:
        batch = wanted.pop(key, None)
        if batch is not None and not in_range:
            ranges.append([])
        if batch is not None:
            ranges[-1].append(batch)
        in_range = batch is not None
    ranges += [[batch] for batch in wanted.values()]  # not registered in `order` (never the case in a build)
    while len(ranges) < workers:
        splittable = [r for r in ranges if len(r) > 1]
        if not splittable:
            break
        largest = max(splittable, key=_bytes)
        index = ranges.index(largest)
        ranges[index : index + 1] = _halve(largest)
    return ranges


def at_most(ranges: list[list[RawGroup]], partitions: int) -> list[list[RawGroup]]:
    """The ranges cut into consecutive pieces of at most `partitions` batches each."""
    return [batches[start : start + partitions] for batches in ranges for start in range(0, len(batches), partitions)]


def _bytes(batches: list[RawGroup]) -> int:
    return sum(max(batch.size, 1) for batch in batches)


def _halve(batches: list[RawGroup]) -> list[list[RawGroup]]:
    """Two non-empty ranges whose bytes are as even as a cut between batches allows."""
    total, running = _bytes(batches), 0
    best_cut, best_gap = 1, None
    for cut in range(1, len(batches)):
        running += max(batches[cut - 1].size, 1)
        gap = abs(total - 2 * running)
        if best_gap is None or gap < best_gap:
            best_cut, best_gap = cut, gap
    return [batches[:best_cut], batches[best_cut:]]
