"""Field selection: encodings, and errors that name batch, line and field."""

import base64
import binascii
import struct

import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from mds_assets.core.profile import check_selection, profile_records
from mds_assets.core.selection import RecordEncoder, SelectionError, decoders_for, parse_fields


def test_every_encoding_round_trips_through_its_decoder():
    selections = parse_fields("s,b:base64,h:hex,j:json,i:int64,f:float64,c:bytes")
    record = {"s": "héllo", "b": "AAEC", "h": "ff00", "j": {"k": [1, None]}, "i": -5, "f": 2.5, "c": b"\x00raw"}
    sample = RecordEncoder(selections, "b1").encode(1, record)
    assert sample == {
        "s": "héllo".encode(),
        "b": b"\x00\x01\x02",
        "h": b"\xff\x00",
        "j": b'{"k":[1,null]}',
        "i": struct.pack("<q", -5),
        "f": struct.pack("<d", 2.5),
        "c": b"\x00raw",
    }
    decoded = {name: decoders_for(selections)[name](value) for name, value in sample.items()}
    # text encodings of binary (base64, hex) come back as the binary they carry
    assert decoded == {**record, "b": b"\x00\x01\x02", "h": b"\xff\x00"}


@pytest.mark.parametrize(
    "spec, record, message",
    [
        ("x", {"y": "1"}, "batch b7, line 12, field 'x': missing"),
        ("x", {"x": 5}, "batch b7, line 12, field 'x': a JSON integer cannot be encoded as utf8"),
        ("x:int64", {"x": "5"}, "field 'x': a JSON string cannot be encoded as int64"),
        ("x:int64", {"x": True}, "a JSON boolean cannot be encoded as int64"),
        ("x:int64", {"x": 2**70}, "field 'x': not valid int64"),
        ("x:base64", {"x": "not base64!"}, "field 'x': not valid base64"),
        ("x:hex", {"x": "zz"}, "field 'x': not valid hex"),
    ],
)
def test_a_bad_value_names_batch_line_and_field(spec, record, message):
    with pytest.raises(SelectionError, match=message):
        RecordEncoder(parse_fields(spec), "b7").encode(12, record)


def test_unknown_encodings_and_repeated_fields_are_refused():
    with pytest.raises(SelectionError, match="unknown encoding 'gif'"):
        parse_fields("img:gif")
    with pytest.raises(SelectionError, match="selected twice: a"):
        parse_fields("a,a:hex")


def test_the_profile_names_the_first_line_a_selection_cannot_take():
    records = [(1, {"a": "x", "n": 1}), (2, {"a": "y"}), (3, {"a": 3, "n": 2})]
    profile = profile_records("b", records)
    assert profile.records == 3 and profile.field_types() == {"a": "integer, string", "n": "integer"}
    with pytest.raises(SelectionError, match="batch b, line 2, field 'n': missing"):
        check_selection(parse_fields("n:int64"), profile)
    with pytest.raises(SelectionError, match="batch b, line 3, field 'a': a JSON integer"):
        check_selection(parse_fields("a"), profile)
    with pytest.raises(SelectionError, match="field 'zz': in no record"):
        check_selection(parse_fields("zz"), profile)
    check_selection(parse_fields("a:json"), profile)


@examples(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_base64_fields_decode_every_standard_encoding(payload):
    encoder = RecordEncoder(parse_fields("b:base64"), "batch.jsonl")
    assert encoder.encode(1, {"b": base64.b64encode(payload).decode()}) == {"b": payload}


@examples(max_examples=500, deadline=None)
@given(st.text(alphabet="ABCDabcd0189+/= \n@-_", max_size=24))
def test_base64_fields_accept_nothing_the_standard_library_refuses(text):
    """The fast decoder never accepts what the strict standard one refuses, nor decodes differently."""
    encoder = RecordEncoder(parse_fields("b:base64"), "batch.jsonl")
    try:
        decoded = encoder.encode(7, {"b": text})["b"]
    except SelectionError as error:
        assert "batch batch.jsonl, line 7, field 'b': not valid base64" in str(error)
        return
    assert decoded == binascii.a2b_base64(text, strict_mode=True)


@pytest.mark.parametrize("text", ["QUFB=", "QUF", " QUFB", "QUFB\n", "QU@B", "QUFB===="])
def test_base64_that_is_not_strictly_standard_fails_naming_batch_line_and_field(text):
    encoder = RecordEncoder(parse_fields("b:base64"), "batch.jsonl")
    with pytest.raises(SelectionError, match=r"batch batch.jsonl, line 3, field 'b': not valid base64"):
        encoder.encode(3, {"b": text})
