"""Numbers reach the dataset exactly as written, or are refused naming batch, line and field."""

from __future__ import annotations

import json
import string
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mds_assets.build import build
from mds_assets.core import raw_sources
from mds_assets.core.raw_sources import RawBatch, RawDataError, list_batches, read_records
from mds_assets.core.selection import RecordEncoder, SelectionError, parse_fields
from mds_assets.resources import MDSSettings
from writer import MDSDataset
from writer.exact_json import LONG_STRING, loads_exact

BIG = 123456789012345678901234567890


def encoded(raw: Path, name: str, fields: str) -> list[dict[str, bytes]]:
    (batch,) = [b for b in list_batches(str(raw)) if b.name == name]
    encoder = RecordEncoder(parse_fields(fields), batch.name)
    return [encoder.encode(line, record) for line, record in read_records(batch)]


def test_a_big_integer_in_a_json_field_builds_and_reads_back_exactly(instance, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "b.jsonl").write_text('{"id": 1, "meta": {"big": 123456789012345678901234567890}}\n')
    settings = MDSSettings(raw_url=str(raw), out_url=str(tmp_path / "out"), fields=["id:int64", "meta:json"])
    report = build(settings, workers=1, progress=False)
    assert report.ok, report.failed
    (sample,) = MDSDataset(settings.out_url, decoders={"meta": json.loads})
    assert sample["meta"] == {"big": BIG}


@pytest.mark.parametrize(
    "literal",
    ["123456789012345678901234567890", "-9223372036854775809", "0.10000000000000000001", "1.00000000000000000000001e5"],
)
def test_every_number_in_a_json_field_is_stored_as_written(tmp_path, literal):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "b.jsonl").write_text(f'{{"meta": [{literal}, 1.5, 7]}}\n')
    (sample,) = encoded(raw, "b.jsonl", "meta:json")
    stored = json.loads(sample["meta"], parse_float=Decimal)
    assert stored[0] == Decimal(literal) and stored[1:] == [Decimal("1.5"), 7]


def test_common_lines_keep_their_exact_values_too(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "b.jsonl").write_text('{"meta": {"n": 18446744073709551615, "f": 0.1, "s": "1234567890123456789"}}\n')
    (sample,) = encoded(raw, "b.jsonl", "meta:json")
    assert json.loads(sample["meta"]) == {"n": 18446744073709551615, "f": 0.1, "s": "1234567890123456789"}


def test_int64_out_of_range_says_so_naming_batch_line_and_field(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "b.jsonl").write_text('{"n": 1}\n{"n": 18446744073709551617}\n')
    with pytest.raises(SelectionError) as raised:
        encoded(raw, "b.jsonl", "n:int64")
    message = str(raised.value)
    assert "batch b.jsonl, line 2, field 'n'" in message and "out of int64's range" in message, message


def test_parquet_columns_of_the_same_name_are_refused_naming_both(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    table = pa.Table.from_arrays([pa.array([1, 2]), pa.array(["a", "b"]), pa.array([3, 4])], names=["x", "y", "x"])
    pq.write_table(table, raw / "p.parquet")
    with pytest.raises(RawDataError) as raised:
        encoded(raw, "p.parquet", "x:int64")
    message = str(raised.value)
    assert "p.parquet" in message and "columns 1 and 3" in message and "'x'" in message, message


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_parquet_nan_and_infinity_are_refused_by_a_json_field(tmp_path, value):
    raw = tmp_path / "raw"
    raw.mkdir()
    pq.write_table(pa.table({"v": pa.array([1.0, value])}), raw / "p.parquet")
    with pytest.raises(SelectionError) as raised:
        encoded(raw, "p.parquet", "v:json")
    assert "batch p.parquet, line 2, field 'v'" in str(raised.value), raised.value
    assert len(encoded(raw, "p.parquet", "v:float64")) == 2  # a float64 field stores them as IEEE 754 does


def records_of(directory: Path, line: bytes) -> list[dict]:
    (directory / "b.jsonl").write_bytes(line + b"\n")
    return [record for _, record in read_records(RawBatch("b.jsonl", str(directory / "b.jsonl"), "jsonl", "", 0))]


def typed(value: Any) -> Any:
    """`value` with each number tagged by its type, so that 0.1 and Decimal("0.1") compare unequal."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


def test_a_line_of_doubles_as_python_writes_them_is_parsed_once(monkeypatch, tmp_path):
    exact_parses = []
    monkeypatch.setattr(raw_sources, "loads_exact", lambda line: exact_parses.append(line) or loads_exact(line))
    record = {"payload": "QUJD" * 3000, "caption": "a cat", "scores": [0.8444218515250481, 0.7579544029403025]}
    assert records_of(tmp_path, json.dumps(record).encode()) == [record]
    assert exact_parses == []


DIGITS = "0123456789"
numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.builds(
        lambda whole, fraction: f"{whole}.{fraction}",
        st.integers(-(10**12), 10**12),
        st.text(DIGITS, min_size=1, max_size=24),
    ),
    st.builds(lambda whole, exponent: f"{whole}e{exponent}", st.integers(-(10**20), 10**20), st.integers(-300, 280)),
)
texts = st.one_of(
    st.text(DIGITS + '.-e"\\:, ', max_size=40), st.text(string.ascii_letters + DIGITS, min_size=LONG_STRING)
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(numbers, texts.map(json.dumps)), min_size=1, max_size=6))
def test_every_line_reads_as_the_exact_parse_reads_it(values):
    line = ("{" + ", ".join(f'"f{index}": {value}' for index, value in enumerate(values)) + "}").encode()
    with tempfile.TemporaryDirectory() as directory:
        assert typed(records_of(Path(directory), line)) == [typed(loads_exact(line))]
