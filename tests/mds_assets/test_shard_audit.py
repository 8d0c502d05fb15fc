"""The read-back of published shards (`core.shard_audit`): what one check reads, and that the
checks in turn read every shard."""

from __future__ import annotations

from mds_assets.core.shard_audit import SHARD_READ_BYTES, audit_shards
from writer import MDSDataset, StreamingDatasetWriter
from writer.storage import Storage

SHARDS = 300


def many_small_shards(folder) -> tuple[Storage, object]:
    with StreamingDatasetWriter(str(folder), ["uid"], 64) as writer:
        writer.write_samples(({"uid": f"sample-{n:06d}".encode()} for n in range(SHARDS * 3)), use_tqdm=False)
    dataset = MDSDataset(str(folder))
    assert dataset.index.num_shards >= SHARDS
    return dataset.storage, dataset.manifest()


def test_each_shard_read_weighs_a_request_against_the_budget_so_small_shards_are_not_all_read_each_time(tmp_path):
    storage, manifest = many_small_shards(tmp_path)
    shards = len(manifest.shards)
    first, record = audit_shards(storage, manifest, {}, budget=0)
    assert len(first.verified) == shards  # never verified: every shard is read, whatever the budget
    budget = 40 * SHARD_READ_BYTES  # far more bytes than the whole dataset holds
    seen: set[str] = set()
    checks = 0
    while len(seen) < shards:
        audit, record = audit_shards(storage, manifest, record, budget=budget)
        assert not audit.problems
        assert 0 < len(audit.verified) <= 40, "a check reads at most budget / (bytes + a request's weight) shards"
        seen.update(audit.verified)
        checks += 1
        assert checks <= -(-shards // len(audit.verified)) + 1
    assert seen == {shard.file for shard in manifest.shards}  # the checks in turn read every shard


def test_a_shard_changed_since_it_was_verified_is_read_beyond_the_budget(tmp_path):
    storage, manifest = many_small_shards(tmp_path)
    _, record = audit_shards(storage, manifest, {}, budget=0)
    changed = manifest.shards[7].file
    path = tmp_path / changed
    path.write_bytes(path.read_bytes()[:-1] + b"!")  # rewritten: a new stamp
    audit, _ = audit_shards(storage, manifest, record, budget=0)
    assert audit.verified == [changed]
    assert changed in audit.problems
