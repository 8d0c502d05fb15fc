"""Which lines call for an exact parse: those whose numbers orjson may change, and only those."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from writer.exact_json import LONG_STRING, a_double_may_change, outside_long_strings


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_orjson_reads_a_double_written_as_python_writes_it_as_float_does(value):
    # what lets a line of such numbers keep orjson's reading
    assert orjson.loads(repr(value)) == float(repr(value))


@pytest.mark.parametrize(
    "number",
    [
        "0.12345678901234568",
        "-2.2250738585072014e-308",
        "1.2345678901234567e+300",
        "18446744073709551615",
        "-9223372036854775808",
    ],
)
def test_a_long_number_orjson_reads_as_written_calls_for_no_exact_parse(number):
    line = f'{{"n": {number}, "f": 0.5, "payload": "{"1234567890" * LONG_STRING}"}}'.encode()
    assert not a_double_may_change(outside_long_strings(line, orjson.loads(line)))


@pytest.mark.parametrize(
    "number",
    ["0.10000000000000000001", "1.00000000000000000000001e5", "123456789012345678901234567890", "-9223372036854775809"],
)
def test_a_long_number_orjson_would_change_calls_for_an_exact_parse(number):
    line = f'{{"payload": "{"A" * LONG_STRING}", "n": [{number}, 1.5]}}'.encode()
    assert a_double_may_change(outside_long_strings(line, orjson.loads(line)))


def test_digits_in_a_short_string_call_for_an_exact_parse_to_be_sure():
    line = b'{"id": "12345678901234567890123", "f": 0.5}'
    assert a_double_may_change(outside_long_strings(line, orjson.loads(line)))


def test_a_long_string_that_reads_like_the_text_between_two_strings_is_scanned():
    # its text also stands, in the line, between the strings "b" and "n", around a number orjson changes
    between = ': 0.10000000000000000001, "x' + "y" * LONG_STRING
    line = b'{"a": "b", "n": 0.10000000000000000001, "s": ' + orjson.dumps(between) + b"}"
    assert a_double_may_change(outside_long_strings(line, orjson.loads(line)))


def test_a_long_string_found_whole_is_left_out_and_the_rest_kept():
    payload = "QUJD" * LONG_STRING
    line = b'{"a": [1, {"b": 2}], "payload": ' + orjson.dumps(payload) + b', "n": 0.5}'
    assert outside_long_strings(line, orjson.loads(line)) == [b'{"a": [1, {"b": 2}], "payload": ', b', "n": 0.5}']
