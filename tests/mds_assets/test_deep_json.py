"""JSON nested too deeply: refused naming batch, line and field, in reading and in encoding."""

import pytest

from mds_assets.build import build
from mds_assets.core.raw_sources import RawDataError, list_batches, read_records
from mds_assets.core.selection import RecordEncoder, SelectionError, parse_fields
from mds_assets.resources import MDSSettings

from .conftest import write_batch


@pytest.mark.parametrize("depth", [300, 1000, 1030])
def test_deeply_nested_json_names_batch_line_and_field(tmp_path, depth):
    (tmp_path / "deep.jsonl").write_text('{"a": 1}\n{"uid": "1", "meta": %s}\n' % ("[" * depth + "]" * depth))
    with pytest.raises(RawDataError, match=r"batch deep.jsonl, line 2(, field 'meta')?: .*(nested|depth)"):
        list(read_records(list_batches(str(tmp_path))[0]))


def test_deep_json_beside_a_long_string_is_refused_too(tmp_path):
    line = '{"payload": "%s", "meta": %s}\n' % ("QUJD" * 1000, "[" * 300 + "]" * 300)
    (tmp_path / "deep.jsonl").write_text(line)
    with pytest.raises(RawDataError, match=r"batch deep.jsonl, line 1, field 'meta': nested deeper than"):
        list(read_records(list_batches(str(tmp_path))[0]))


def test_many_shallow_arrays_are_not_deep(tmp_path):
    (tmp_path / "wide.jsonl").write_text('{"a": %s}\n' % ",".join(["[[1]]"] * 500).join("[]"))
    assert list(read_records(list_batches(str(tmp_path))[0])) == [(1, {"a": [[[1]]] * 500})]


def test_a_value_too_deep_to_encode_names_batch_line_and_field():
    deep = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(SelectionError, match=r"batch b, line 3, field 'm': not valid json"):
        RecordEncoder(parse_fields("m:json"), "b").encode(3, {"m": deep})


def test_deep_json_fails_its_partition_naming_batch_line_and_field(instance, tmp_path):
    write_batch(tmp_path / "raw", "ok.jsonl", [{"uid": "1", "meta": [[1]]}])
    (tmp_path / "raw" / "deep.jsonl").write_text('{"uid": "1", "meta": %s}\n' % ("[" * 1000 + "]" * 1000))
    settings = MDSSettings(raw_url=str(tmp_path / "raw"), out_url=str(tmp_path / "out"), fields=["uid", "meta:json"])
    report = build(settings, workers=1, progress=False)
    (error,) = report.failed.values()  # deep.jsonl's partition (with ok.jsonl: small files share one)
    assert error.startswith("batch deep.jsonl, line 1, field 'meta': nested deeper than")
