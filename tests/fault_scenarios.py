"""The three storage paths under fault injection, written once for any fsspec root URL
(tests/writer/test_fault_injection.py runs them on a local directory, tests/system on S3)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable

import fsspec

from mds_assets.assets.index import mds_index  # noqa: F401 - the asset whose publish step is merge_datasets
from mds_assets.core.grouping import RawGroup
from mds_assets.core.partition_writer import write_partition
from mds_assets.core.raw_sources import list_batches
from mds_assets.core.selection import parse_fields
from mds_assets.core.streaming_partition import write_streaming_partition
from mds_assets.core.streaming_publish import publish_streaming
from writer import MDSDataset, StreamingDatasetWriter
from writer.merge import merge_datasets
from writer.reference_index import first_unstored_file, read_index
from writer.storage import Storage
from writer.verify import verify

from .faults import check_failure, count_changes, fail_at, snapshot


class Scenario:
    """A starting state made fresh for every k, an operation on it, and what its result must be."""

    def __init__(self, root_url: str) -> None:
        self.root_url = root_url.rstrip("/")
        self.runs = 0

    def fresh_root(self) -> str:
        self.runs += 1
        return f"{self.root_url}/run{self.runs}"


def samples_of(url: str) -> list[bytes]:
    return [sample["a"] for sample in MDSDataset(url)]


def write_dataset(url: str, values: list[bytes], limit: int = 64, **kwargs) -> None:
    with StreamingDatasetWriter(url, ["a"], shard_size_limit=limit, **kwargs) as writer:
        writer.write_samples(({"a": value} for value in values), use_tqdm=False)


def every_fault(
    prepare: Callable[[str], None],
    operation: Callable[[str], None],
    target: Callable[[str], str],
    is_new: Callable[[str], bool],
    no_index_allowed: Callable[[str], bool],
    root: Scenario,
    must_claim: bool = True,
    after_failure: Callable[[str], None] = lambda run: None,
) -> dict:
    """For each k: prepare, fail the k-th change of `operation`, check the invariant (and
    `after_failure`'s own), rerun, check the new dataset is complete. Returns how many runs ended
    in each state (for the test to show)."""
    dry = root.fresh_root()
    prepare(dry)
    changes = count_changes(lambda: operation(dry))
    assert changes, "the operation made no storage change"
    assert is_new(dry)
    states: dict[str, int] = {}
    for k in range(1, len(changes) + 1):
        run = root.fresh_root()
        prepare(run)
        before = snapshot(target(run))
        with fail_at(k) as seen, warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            error = _raised_by(lambda run=run: operation(run))
        if error is None:  # only cleanup after the work (the lock, the staging folder) may fail quietly
            assert is_new(run), f"change {k} ({changes[k - 1]}) failed silently and the dataset is not complete"
            url = seen[k - 1].split(" ", 1)[1]  # as this run made it (a new generation has a name of its own)
            assert any(url in str(warning.message) for warning in warned), f"change {k}: no warning names {url}"
            states["new, cleanup warned"] = states.get("new, cleanup warned", 0) + 1
            continue
        assert "injected fault" in str(error) or "injected fault" in str(error.__cause__), (
            f"change {k} ({changes[k - 1]}) failed with another error: {error!r}"
        )
        state = check_failure(
            target(run), before, error, lambda run=run: is_new(run), no_index_allowed(changes[k - 1]), must_claim
        )
        after_failure(run)
        states[state] = states.get(state, 0) + 1
        operation(run)  # the same operation, no fault: the new dataset, complete
        assert is_new(run), f"a rerun after a fault at change {k} ({changes[k - 1]}) did not restore the dataset"
    return {"changes": len(changes), **states}


def _raised_by(operation: Callable[[], None]) -> BaseException | None:
    try:
        operation()
    except Exception as error:  # the test inspects whatever was raised
        return error
    return None


# -- 1. a writer's finish --------------------------------------------------------------

WRITER_VALUES = [bytes([n]) * (n % 40 + 1) for n in range(24)]


def writer_finish(root: Scenario) -> dict:
    def operation(run: str) -> None:
        write_dataset(f"{run}/ds", WRITER_VALUES, compression="gz")

    def is_new(run: str) -> bool:
        return samples_of(f"{run}/ds") == WRITER_VALUES and verify(f"{run}/ds").ok

    # A new directory has no previous dataset to keep, and a writer publishes nothing on failure:
    # its message names the file that failed and claims nothing about the directory.
    return every_fault(lambda run: None, operation, lambda run: f"{run}/ds", is_new, lambda change: True, root, False)


# -- 2. a partition rebuild's promotion ----------------------------------------------------


def _raw_batch(run: str, records: list[dict]) -> None:
    with fsspec.open(f"{run}/raw/b.jsonl", "w") as file:
        file.write("".join(json.dumps(record) + "\n" for record in records))


OLD_RECORDS = [{"a": f"old-{n}" * (n % 5 + 1)} for n in range(12)]
NEW_RECORDS = [{"a": f"new-{n}" * (n % 7 + 1)} for n in range(20)]


def partition_promotion(root: Scenario) -> dict:
    def rebuild(run: str) -> None:
        (batch,) = list_batches(f"{run}/raw")
        write_partition(RawGroup((batch,)), parse_fields(["a"]), f"{run}/out", 120, None)

    def prepare(run: str) -> None:
        _raw_batch(run, OLD_RECORDS)
        rebuild(run)
        _raw_batch(run, NEW_RECORDS)

    def is_new(run: str) -> bool:
        url = f"{run}/out/partitions/b"
        return samples_of(url) == [r["a"].encode() for r in NEW_RECORDS] and verify(url).ok

    # "no index" is allowed only for the promotion's own publish steps, not for the staging write
    def promotion_step(change: str) -> bool:
        return "/.staging/" not in change

    return every_fault(prepare, rebuild, lambda run: f"{run}/out/partitions/b", is_new, promotion_step, root)


# -- 3. mds_index's publish ---------------------------------------------------------------


def index_publish(root: Scenario, appended: bool) -> dict:
    """Publish parts 0..2 over a dataset of parts 0..1 (appended) or of parts 1..2 (renumbered)."""
    values = {part: [f"{part}:{n}".encode() * (n % 4 + 1) for n in range(8)] for part in range(3)}

    def parts(run: str, numbers) -> list[str]:
        return [f"{run}/part{number}" for number in numbers]

    def prepare(run: str) -> None:
        for part in range(3):
            write_dataset(f"{run}/part{part}", values[part], limit=80)
        merge_datasets(
            parts(run, (0, 1) if appended else (1, 2)), f"{run}/out", sidecars={"mds_partitions.json": b"before"}
        )

    def publish(run: str) -> None:
        merge_datasets(parts(run, (0, 1, 2)), f"{run}/out", sidecars={"mds_partitions.json": b"after"})

    def is_new(run: str) -> bool:
        expected = values[0] + values[1] + values[2]
        return samples_of(f"{run}/out") == expected and verify(f"{run}/out").ok

    return every_fault(prepare, publish, lambda run: f"{run}/out", is_new, lambda change: True, root)


# -- 4. the streaming format: a partition rebuilt under new names, then published by reference ----


def referenced_files(url: str) -> dict[str, bytes]:
    """Every file the index at `url` refers to, with its bytes."""
    storage = Storage(url)
    index = read_index(storage)
    return {name: storage.read(name) for name, _ in index.stored_files()} if index else {}


def streaming_rebuild_and_publish(root: Scenario, compression: str | None = "zstd") -> dict:
    """A published streaming dataset of one partition, its batch changed; the partition rebuilt
    and the dataset published again. Whatever step fails, the published index is the previous
    one with every file it refers to byte for byte, or the new one complete — never none."""
    published_before: dict[str, tuple[bytes, dict[str, bytes]]] = {}

    def rebuild_and_publish(run: str) -> None:
        group = RawGroup(tuple(list_batches(f"{run}/raw")))  # the one raw file, one partition
        write_streaming_partition(group, parse_fields(["a"]), f"{run}/out", 400, compression)
        publish_streaming(f"{run}/out", [group.partition_key], None)

    def prepare(run: str) -> None:
        _raw_batch(run, OLD_RECORDS)
        rebuild_and_publish(run)
        _raw_batch(run, NEW_RECORDS)
        published_before[run] = (Storage(f"{run}/out").read("index.json"), referenced_files(f"{run}/out"))

    def is_new(run: str) -> bool:
        out = Storage(f"{run}/out")
        index = read_index(out)
        stored = index is not None and first_unstored_file(out, index) is None
        return stored and [s["a"] for s in MDSDataset(f"{run}/out")] == [r["a"].encode() for r in NEW_RECORDS]

    def referenced_files_unchanged(run: str) -> None:
        index, files = published_before[run]
        if Storage(f"{run}/out").read("index.json") == index:
            assert referenced_files(f"{run}/out") == files, "a file the published index refers to changed"
            assert [s["a"] for s in MDSDataset(f"{run}/out")] == [r["a"].encode() for r in OLD_RECORDS]

    return every_fault(
        prepare,
        rebuild_and_publish,
        lambda run: f"{run}/out",
        is_new,
        lambda change: False,  # publishing by reference never removes an index
        root,
        after_failure=referenced_files_unchanged,
    )
