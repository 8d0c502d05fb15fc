"""Empty batches become empty partitions and never fail a build."""

from mds_assets.build import build
from mds_assets.resources import MDSSettings
from writer import MDSDataset
from writer.verify import verify

from .conftest import FIELDS, write_batch


def test_empty_batches_become_empty_partitions_and_do_not_fail_the_others(instance, settings, raw_dir, tmp_path):
    (raw_dir / "empty.jsonl").write_bytes(b"")
    (raw_dir / "blank.jsonl").write_text("\n  \n\n")
    (raw_dir / "nofiles").mkdir()
    report = build(settings, workers=1, progress=False)
    assert report.ok and not report.failed, report.failed
    assert sorted(report.built) == ["batch-0", "batch-1", "batch-2", "blank", "empty", "nofiles"]
    for key in ("empty", "blank", "nofiles"):
        assert len(MDSDataset(str(tmp_path / "out" / "partitions" / key))) == 0
    published = MDSDataset(str(tmp_path / "out"))
    assert len(published) == 120 and verify(published.storage.url).problems == []


def test_a_raw_folder_of_empty_batches_publishes_an_empty_dataset(instance, tmp_path):
    write_batch(tmp_path / "raw", "empty.jsonl", [])
    settings = MDSSettings(raw_url=str(tmp_path / "raw"), out_url=str(tmp_path / "out"), fields=FIELDS)
    report = build(settings, workers=1, progress=False)
    assert report.ok and report.built == ["empty"], report
    assert len(MDSDataset(str(tmp_path / "out"))) == 0
