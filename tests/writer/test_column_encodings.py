"""Each field's encoding is recorded in the manifest; `decoders="auto"` and `mds head` decode by it."""

import json
import struct

import pytest

from writer import MDSDataset, StreamingDatasetWriter
from writer.cli import main
from writer.merge import MergeError, merge_datasets

ENCODINGS = {"text": "str", "n": "int64", "x": "float64", "meta": "json", "blob": "bytes"}
SAMPLE = {
    "text": "two\nlines and a zero‍width joiner".encode(),
    "n": struct.pack("<q", 1000),
    "x": struct.pack("<d", 0.5),
    "meta": b'{"tags":["a",1]}',
    "blob": b"\x00\xff",
}


def write(url, encodings=ENCODINGS, sample=SAMPLE):
    with StreamingDatasetWriter(url, list(sample), column_encodings=encodings) as writer:
        writer.write_sample(sample)


def test_auto_decoders_read_values_by_the_recorded_encodings(tmp_path):
    write(str(tmp_path))
    assert MDSDataset(str(tmp_path), decoders="auto")[0] == {
        "text": "two\nlines and a zero‍width joiner",
        "n": 1000,
        "x": 0.5,
        "meta": {"tags": ["a", 1]},
        "blob": b"\x00\xff",
    }
    assert json.loads((tmp_path / "mds_manifest.json").read_text())["settings"]["column_encodings"] == ENCODINGS


def test_mds_head_shows_values_not_encodings(tmp_path, capsys):
    write(str(tmp_path))
    assert main(["head", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "sample": 0,
        "text": "two\nlines and a zero‍width joiner",
        "n": 1000,
        "x": 0.5,
        "meta": {"tags": ["a", 1]},
        "blob": "0x00ff",
    }


def test_a_dataset_without_recorded_encodings_reads_as_bytes(tmp_path):
    write(str(tmp_path), encodings=None)
    assert MDSDataset(str(tmp_path), decoders="auto")[0] == SAMPLE


@pytest.mark.parametrize(
    "encodings, message",
    [
        ({"nope": "str"}, "fields the dataset does not have: nope"),
        ({"n": "int128"}, r"column_encodings\['n'\] = 'int128'; known"),
    ],
)
def test_bad_encodings_are_refused_before_any_file(tmp_path, encodings, message):
    with pytest.raises(ValueError, match=message):
        StreamingDatasetWriter(str(tmp_path / "ds"), list(SAMPLE), column_encodings=encodings)
    assert not (tmp_path / "ds").exists()


def test_merging_keeps_encodings_and_fills_them_for_parts_written_without(tmp_path):
    write(str(tmp_path / "new"))
    write(str(tmp_path / "old"), encodings=None)  # a partition written before encodings were recorded
    merge_datasets([str(tmp_path / "old"), str(tmp_path / "new")], str(tmp_path / "out"))
    assert [s["n"] for s in MDSDataset(str(tmp_path / "out"), decoders="auto")] == [1000, 1000]


def test_merging_parts_with_other_encodings_is_refused(tmp_path):
    write(str(tmp_path / "a"))
    write(str(tmp_path / "b"), encodings={**ENCODINGS, "n": "bytes"})
    with pytest.raises(MergeError, match="has column encodings"):
        merge_datasets([str(tmp_path / "a"), str(tmp_path / "b")], str(tmp_path / "out"))
