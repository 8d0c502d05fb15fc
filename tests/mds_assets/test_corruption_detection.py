"""A flipped byte in a published shard is seen (the monitoring job, the reader) and repaired
(`mds-assets build --verify`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mds_assets.cli import main
from mds_assets.core.selection import decoders_for
from mds_assets.definitions import defs
from mds_assets.resources import MDSSettings
from writer import MDSDataset, StreamingDatasetWriter
from writer.verify import verify as verify_dataset

from ..commands import build_arguments
from .conftest import FIELDS, record


def flip_a_byte(path: Path, keep_mtime: bool = False) -> None:
    """XOR one byte in place (a hard link's other names see it too), as bit rot or a bad disk would."""
    status = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    with open(path, "r+b") as file:
        file.write(data)
    if keep_mtime:
        os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))


def build_command(settings: MDSSettings, *options: str) -> list[str]:
    grouping = ["--partition-bytes", str(settings.partition_bytes)] if settings.partition_bytes else []
    return [*build_arguments(settings.raw_url, settings.out_url, FIELDS), "--quiet", *grouping, *options]


def check_published(settings: MDSSettings, instance):
    job = defs.resolve_job_def("check_published_dataset")
    result = job.execute_in_process(instance=instance, resources={"mds_settings": settings}, raise_on_error=False)
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["rewritten", "bit-rot"])
def test_the_monitoring_job_fails_naming_a_shard_with_a_flipped_byte(instance, settings, keep_mtime):
    assert main(build_command(settings)) == 0
    assert all(e.passed for e in check_published(settings, instance).values())
    flip_a_byte(Path(settings.out_url) / "000001.mds", keep_mtime)
    consistency = check_published(settings, instance)["index_consistency"]
    assert not consistency.passed
    assert "000001.mds" in consistency.description and "checksum" in consistency.description


def test_build_verify_rebuilds_a_damaged_partition_and_republishes(instance, settings, capsys):
    assert main(build_command(settings)) == 0
    flip_a_byte(Path(settings.out_url) / "000001.mds")  # also the partition's shard: a hard link of it
    assert not verify_dataset(settings.out_url).ok
    assert main(build_command(settings, "--verify")) == 0, capsys.readouterr().err
    assert "damaged" in capsys.readouterr().out
    assert verify_dataset(settings.out_url).ok
    samples = list(MDSDataset(settings.out_url, decoders=decoders_for(settings.selections())))
    expected = [record(batch, n) for batch in range(3) for n in range(40)]
    assert [s["uid"] for s in samples] == [r["uid"] for r in expected]
    assert [s["meta"] for s in samples] == [r["meta"] for r in expected]
    for partition in sorted((Path(settings.out_url) / "partitions").iterdir()):
        assert verify_dataset(str(partition)).ok, partition


def test_a_build_whose_check_fails_says_why_and_what_repairs_it(instance, settings, capsys):
    assert main(build_command(settings)) == 0
    flip_a_byte(Path(settings.out_url) / "000001.mds")
    capsys.readouterr()
    assert main(build_command(settings)) == 1
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("check index_consistency")]
    assert line.startswith("check index_consistency: FAILED: ") and "000001.mds" in line and "checksum" in line, out
    assert "mds-assets build --verify" in line, out


@pytest.mark.parametrize("compression", [None, "gz"])
def test_the_reader_refuses_a_shard_it_reads_whole_when_its_checksum_differs(tmp_path, compression):
    with StreamingDatasetWriter(str(tmp_path), ["uid"], 64, compression) as writer:
        writer.write_samples(({"uid": f"sample-{n:04d}".encode()} for n in range(40)), use_tqdm=False)
    shard = sorted(tmp_path.glob("000001.mds*"))[0]
    flip_a_byte(shard)
    with pytest.raises(ValueError, match=rf"{shard.name}.*checksum"):
        list(MDSDataset(str(tmp_path)))
    if compression:  # a compressed shard is read whole for any sample
        with pytest.raises(ValueError, match=rf"{shard.name}.*checksum"):
            MDSDataset(str(tmp_path))[5]
