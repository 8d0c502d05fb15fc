"""Files of records directly under the raw URL that are no batch (JSON Lines named `*.json`, CSV):
the build says so, naming them, rather than leaving them out without a word."""

import json

from mds_assets.cli import main

from ..commands import build_arguments
from .conftest import FIELDS, record, write_batch


def test_data_files_that_are_no_batch_are_named_in_a_note(instance, tmp_path, capsys):
    raw, out = tmp_path / "raw", tmp_path / "out"
    write_batch(raw, "a.jsonl", [record(0, n) for n in range(3)])
    (raw / "b.json").write_text(json.dumps(record(1, 0)) + "\n")  # JSON Lines, as `Dataset.to_json` names it
    (raw / "c.csv").write_text("uid\n2-0\n")
    (raw / "README.md").write_text("about this data")
    (raw / "_SUCCESS").write_text("")
    assert main([*build_arguments(str(raw), str(out), FIELDS), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "published 3 samples" in printed
    (note,) = [line for line in printed.splitlines() if "no batch" in line]
    assert "b.json" in note and "c.csv" in note and "*.jsonl" in note, note
    assert "README.md" not in note and "_SUCCESS" not in note


def test_a_raw_url_of_only_such_files_says_so(instance, tmp_path, capsys):
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    (raw / "part-00000.json").write_text(json.dumps(record(1, 0)) + "\n")
    assert main([*build_arguments(str(raw), str(out), FIELDS), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "part-00000.json" in printed and "no raw batches found" in printed, printed
