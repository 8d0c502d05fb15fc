"""What a republish asks of storage: listings, not a request per published shard (an output holds
tens of thousands of them)."""

from __future__ import annotations

from pathlib import Path

from mds_assets.build import build
from mds_assets.definitions import defs
from writer import MDSDataset
from writer.storage import Storage


def test_a_republish_and_its_checks_ask_no_published_shard_its_size_one_by_one(instance, settings, monkeypatch):
    settings = settings.model_copy(update={"shard_size_limit": 300})
    assert build(settings, workers=1, progress=False).ok
    published = MDSDataset(settings.out_url).index.num_shards
    assert published >= 10
    out = Path(settings.out_url)
    asked: list[str] = []
    real_size = Storage.size

    def counting_size(self: Storage, name: str) -> int:
        if Path(self.path(name)).parent == out:
            asked.append(name)
        return real_size(self, name)

    monkeypatch.setattr(Storage, "size", counting_size)
    result = defs.resolve_job_def("publish_index").execute_in_process(
        instance=instance, resources={"mds_settings": settings}
    )
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    metadata = result.asset_materializations_for_node("mds_index")[0].metadata
    assert metadata["changed"].value is False and metadata["shards"].value == published
    assert asked == []
