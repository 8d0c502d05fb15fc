"""`mds inspect | verify | head` on good and damaged datasets."""

import json

import pytest

from writer import StreamingDatasetWriter
from writer.cli import main
from writer.verify import verify

from .helpers import seed_samples


@pytest.fixture
def dataset_path(tmp_path):
    with StreamingDatasetWriter(str(tmp_path), ["uid", "data"], shard_size_limit=300, compression="gz") as writer:
        writer.write_samples(seed_samples(), use_tqdm=False)
    return tmp_path


def test_inspect_shows_fields_shards_and_the_shard_table(dataset_path, capsys):
    assert main(["inspect", str(dataset_path)]) == 0
    out = capsys.readouterr().out
    assert "fields:       uid, data" in out
    assert "samples:      100" in out
    assert "compression:  gz" in out
    assert "000009.mds.gz" in out and "000010.mds.gz" not in out


def test_verify_passes_a_sound_dataset(dataset_path, capsys):
    assert main(["verify", "--quiet", str(dataset_path)]) == 0
    assert capsys.readouterr().out.startswith("OK")


def test_verify_fails_on_a_changed_shard_and_names_it(dataset_path, capsys):
    shard = dataset_path / "000003.mds.gz"
    data = bytearray(shard.read_bytes())
    data[-9] ^= 0xFF  # inside the gzip trailer's CRC: still a file, not the bytes written
    shard.write_bytes(bytes(data))
    assert main(["verify", "--quiet", str(dataset_path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAILED") and "000003.mds.gz" in out


def test_verify_fails_on_a_missing_shard(dataset_path, capsys):
    (dataset_path / "000005.mds.gz").unlink()
    assert main(["verify", "--quiet", str(dataset_path)]) == 1
    assert "000005.mds.gz: missing" in capsys.readouterr().out


def test_verify_reports_a_missing_dataset(tmp_path, capsys):
    assert main(["verify", "--quiet", str(tmp_path)]) == 1
    assert "no index" in capsys.readouterr().out


def test_head_prints_the_first_samples_of_a_field(dataset_path, capsys):
    assert main(["head", str(dataset_path), "-n", "2", "--field", "uid"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [{"sample": 0, "uid": "000000"}, {"sample": 1, "uid": "000001"}]


def test_head_rejects_an_unknown_field(dataset_path, capsys):
    assert main(["head", str(dataset_path), "--field", "nope"]) == 1
    assert "no field 'nope'" in capsys.readouterr().err


def test_the_reader_verifies_against_the_manifest(dataset_path):

    assert verify(str(dataset_path)).ok
    shard = dataset_path / "000002.mds.gz"
    shard.write_bytes(shard.read_bytes()[:-9] + bytes([shard.read_bytes()[-9] ^ 1]) + shard.read_bytes()[-8:])
    report = verify(str(dataset_path))
    assert not report.ok and any("000002.mds.gz" in problem for problem in report.problems)
