"""The published dataset is never lost, and a build publishes every raw batch it was given."""

import json

from mds_assets.cli import main
from writer import MDSDataset
from writer.verify import verify

from ..commands import MDS_ASSETS, build_arguments


def build_cli(raw, out, *extra):
    return main([*build_arguments(str(raw), str(out), "uid,text"), "--quiet", *extra])


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
    (partition,) = json.loads((out / "mds_partitions.json").read_text())["partitions"]  # b1 and b2, one group
    assert partition.startswith("b1_2_files-")


def test_two_builds_on_one_output_at_once_never_corrupt_it_and_say_who_holds_the_lock(tmp_path):
    import os
    import subprocess
    import time

    raw, out = tmp_path / "raw", tmp_path / "out"
    for batch in range(2):  # big enough that both builds write the same partition at the same time
        lines(raw / f"b{batch}.jsonl", [{"uid": f"{batch}-{n}", "text": "t" * (n % 50)} for n in range(60_000)])
    command = [
        *MDS_ASSETS,
        *build_arguments(str(raw), str(out), "uid,text"),
        "--quiet",
        "--shard-size-limit",
        "20000",
    ]

    def start(home: str) -> subprocess.Popen:
        return subprocess.Popen(
            command + ["--workers", "1"],
            env={**os.environ, "DAGSTER_HOME": str(tmp_path / home)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    builds = [start("home0")]
    deadline = time.monotonic() + 60
    while not (out / "partitions" / ".staging" / "b0").exists():  # the first build is writing b0 now
        assert time.monotonic() < deadline and builds[0].poll() is None, "the first build never started b0"
        time.sleep(0.005)
    builds.append(start("home1"))
    results = [build.communicate(timeout=240) + (build.returncode,) for build in builds]
    for _stdout, stderr, status in results:
        assert "Traceback" not in stderr and "Errno 2" not in stderr and "not empty" not in stderr, stderr
        assert status == 0 or "is locked by" in stderr, stderr
    assert any(status == 0 for _, _, status in results) or all("is locked by" in err for _, err, _ in results)
    rerun = subprocess.run(
        command,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path / "home0")},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert len(MDSDataset(str(out))) == 2 * 60_000 and verify(str(out)).ok


def test_a_partition_promoted_but_never_recorded_by_dagster_is_published(tmp_path, monkeypatch):
    # What a build killed between writing a partition and recording its materialisation leaves.
    from dagster import materialize

    from mds_assets.assets.index import mds_index
    from mds_assets.build import dagster_instance
    from mds_assets.core.partition_writer import write_partition
    from mds_assets.resources import MDSSettings

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    raw, out = tmp_path / "raw", tmp_path / "out"
    lines(raw / "b1.jsonl", [{"uid": "1", "text": "a"}])
    lines(raw / "b2.jsonl", [{"uid": "2", "text": "b"}])
    assert build_cli(raw, out) == 0
    lines(raw / "b3.jsonl", [{"uid": "3", "text": "c"}])
    settings = MDSSettings(raw_url=str(raw), out_url=str(out), fields=["uid", "text"])
    (group,) = settings.raw_groups()  # b1, b2 and b3: the group that replaces the one of b1 and b2
    write_partition(group, settings.selections(), str(out), settings.shard_size_limit, None)  # no Dagster record
    assert materialize([mds_index], instance=dagster_instance(), resources={"mds_settings": settings}).success
    assert [s["uid"] for s in MDSDataset(str(out), decoders={"uid": bytes.decode})] == ["1", "2", "3"]


def test_a_batch_deleted_with_its_partition_leaves_the_dataset_and_a_kept_partition_is_named(
    tmp_path, monkeypatch, capsys
):
    import shutil

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    raw, out = tmp_path / "raw", tmp_path / "out"
    for name in ("b1", "b2", "b3"):
        lines(raw / f"{name}.jsonl", [{"uid": name, "text": "t"}])
    one_per_file = ("--partition-bytes", "1")  # a partition per batch (a group's files go with it)
    assert build_cli(raw, out, *one_per_file) == 0
    (raw / "b2.jsonl").unlink()
    shutil.rmtree(out / "partitions" / "b2")  # dropped on purpose
    (raw / "b3.jsonl").unlink()  # raw data archived; its partition stays
    capsys.readouterr()
    assert build_cli(raw, out, *one_per_file) == 0
    assert [s["uid"] for s in MDSDataset(str(out), decoders={"uid": bytes.decode})] == ["b1", "b3"]
    assert f"note: partition b3 has no raw batch under {raw} any more" in capsys.readouterr().out
