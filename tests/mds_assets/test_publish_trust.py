"""The published dataset is never lost, and a build publishes every raw batch it was given."""

import json

from mds_assets.cli import main
from writer import MDSDataset
from writer.verify import verify


def build_cli(raw, out, *extra):
    return main(["build", "--raw", str(raw), "--out", str(out), "--fields", "uid,text", "--quiet", *extra])


def lines(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records))


def test_short_records_beside_long_ones_publish_and_keep_the_previous_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    raw, out = tmp_path / "raw", tmp_path / "out"
    lines(raw / "b1.jsonl", [{"uid": "1", "text": "a"}, {"uid": "2", "text": "bb"}])
    assert build_cli(raw, out) == 0
    lines(raw / "b2.jsonl", [{"uid": "3", "text": "x" * 300}, {"uid": "4", "text": "y"}])
    assert build_cli(raw, out) == 0
    assert [s["uid"] for s in MDSDataset(str(out), decoders={"uid": bytes.decode})] == ["1", "2", "3", "4"]
    assert verify(str(out)).ok


def test_a_build_under_another_dagster_home_publishes_every_batch(tmp_path, monkeypatch):
    raw, out = tmp_path / "raw", tmp_path / "out"
    lines(raw / "b1.jsonl", [{"uid": "1", "text": "a"}])
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home-a"))
    assert build_cli(raw, out) == 0
    lines(raw / "b2.jsonl", [{"uid": "2", "text": "b"}])
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home-b"))
    assert build_cli(raw, out) == 0
    assert [s["uid"] for s in MDSDataset(str(out), decoders={"uid": bytes.decode})] == ["1", "2"]
    assert json.loads((out / "mds_partitions.json").read_text())["partitions"] == ["b1", "b2"]
