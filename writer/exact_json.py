"""JSON numbers kept exactly as written, from the raw line to the stored `json` field.

The fast line parser (orjson) turns an integer outside the 64-bit range into a float, and every
parser turns a decimal number into the nearest double, which changes it when it has more
significant digits than a double holds exactly (16 or more). So a line keeps orjson's result
unless that holds a float (a walk over the record, cheap) and the line writes a number that
orjson may have changed: one with a run of 16 digits or dots that is neither a 64-bit integer
nor a double written as Python writes it (`repr`, as most writers do). Such a line is parsed
again here, by Python's `json`: integers as Python ints (exact at any size), and a decimal
number that no double holds exactly as an `ExactNumber` carrying its value, which the `json`
encoding writes back as written. The scan for long numbers reads the line around its long strings
(a base64 payload, say): it costs a fraction of the parse.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson

_DIGITS_AS_NUL = bytes.maketrans(b"0123456789.", b"\x00" * 11)
_SIXTEEN = b"\x00" * 16  # a valid JSON line holds no raw NUL byte: only digits and dots become NULs


LONG_STRING = 256  # characters: a string value at least this long is left out of the scan for long numbers
_NUMBER_BYTES = frozenset(b"0123456789.eE+-")
_NUMBER_TEXT = re.compile(rb"[0-9.eE+-]*")
_INT64_MIN, _UINT64_END = -(2**63), 2**64  # orjson reads an integer in this range as an int, exactly


def a_double_may_change(text: Sequence[bytes]) -> bool:
    """Whether orjson may have read a number of a line other than the line writes it. `text` is the
    line, or the pieces of it `outside_long_strings` leaves. True when it writes a number with a run
    of 16 digits or dots (a number with 16 or more significant digits, written as few as the digits
    need, shows one) that is neither an integer of 64 bits nor a decimal number a double reads back
    as written. Text that merely looks like such a number (digits in a string) answers True too: the
    line is then parsed exactly, which is never wrong, only slower."""
    for piece in text:
        translated = piece.translate(_DIGITS_AS_NUL)
        found = translated.find(_SIXTEEN)
        while found != -1:
            begin, stop = found, _number_end(piece, found)
            while begin and piece[begin - 1] in _NUMBER_BYTES:  # a sign, an exponent before the run
                begin -= 1
            if _read_otherwise(piece[begin:stop]):
                return True
            found = translated.find(_SIXTEEN, stop)
    return False


def _number_end(piece: bytes, start: int) -> int:
    matched = _NUMBER_TEXT.match(piece, start)  # `*`: it always matches
    return matched.end() if matched else start


def _read_otherwise(token: bytes) -> bool:
    """Whether orjson may read this number other than as written: an integer beyond 64 bits (a
    float then), or a decimal number that is not the shortest text of the double nearest to it
    (orjson reads the nearest double, correctly rounded, as `float` does)."""
    if token.removeprefix(b"-").isdigit():
        return not _INT64_MIN <= int(token) < _UINT64_END
    try:
        return repr(float(token)).encode() != token
    except ValueError:  # not one number (digits, dots and signs inside a string, say)
        return True


def outside_long_strings(line: bytes, record: dict[str, Any]) -> list[bytes]:
    """The pieces of `line` (orjson's `record` of it) around its long top-level string values (a
    base64 payload, say): what scans of the line for numbers and brackets need to read. A string
    is left out only when found whole, as orjson writes it, and what is left out never hides a
    number or a bracket: it starts and ends with a quote and holds no other unescaped quote, so it
    is a string, the end of one, or the text between two strings; and that text always holds a `:`
    or `,`, which a left-out string's text must not."""
    if len(line) < LONG_STRING:
        return [line]
    spans = []
    for value in record.values():
        if type(value) is str and len(value) >= LONG_STRING:
            written = orjson.dumps(value)
            at = -1 if b"," in written or b":" in written else _find(line, written)
            if at != -1:
                spans.append((at, at + len(written)))
    pieces, start = [], 0
    for begin, end in sorted(spans):
        if begin < start:  # the same text found twice: read everything
            return [line]
        pieces.append(line[start:begin])
        start = end
    pieces.append(line[start:] if start else line)
    return pieces


def _find(line: bytes, text: bytes) -> int:
    """`line.find(text)`, several times faster for a long `text`: its first bytes, then the rest compared."""
    head = text[:64]
    at = line.find(head)
    while at != -1 and not line.startswith(text, at):
        at = line.find(head, at + 1)
    return at


def holds_a_float(value: Any) -> bool:
    """A float anywhere in a parsed value: only then can orjson have changed a number (an
    integer out of the 64-bit range, or a decimal number, becomes a float; other integers are exact)."""
    stack = [value]
    while stack:
        container = stack.pop()
        for item in container.values() if type(container) is dict else container:
            kind = type(item)
            if kind is float:
                return True
            if kind is dict or kind is list:
                stack.append(item)
    return False


class ExactNumber(Decimal):
    """A JSON decimal number that no double holds exactly: its value as written."""

    def __repr__(self) -> str:
        return str(self)


def loads_exact(line: bytes) -> Any:
    """Parse one JSON document (strict UTF-8, no NaN/Infinity), every number exact."""
    return json.loads(line.decode("utf-8"), parse_float=_exact_float, parse_constant=_refuse_constant)


def _exact_float(text: str) -> float | ExactNumber:
    value = float(text)
    if repr(value) == text:  # the common case: written as Python, orjson and most writers write a double
        return value
    if value in (float("inf"), float("-inf")) or Decimal(repr(value)) != Decimal(text):
        return ExactNumber(text)
    return value


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def dumps_compact(value: Any) -> bytes:
    """Compact JSON, UTF-8; NaN and Infinity (which JSON has not) refused; ExactNumbers as written."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except TypeError:
        if not _holds_exact_number(value):
            raise
    except ValueError as error:  # json's own words are "Out of range float values are not JSON compliant"
        if "not JSON compliant" in str(error):
            raise ValueError("NaN and Infinity are not JSON numbers: select the field as float64") from None
        raise
    exact: list[str] = []
    token = secrets.token_hex(8)  # no raw string holds it by chance
    text = json.dumps(_placeholders(value, exact, token), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    for number, written in enumerate(exact):
        text = text.replace(f'"{token}:{number}"', written, 1)
    return text.encode("utf-8")


def _holds_exact_number(value: Any) -> bool:
    if isinstance(value, ExactNumber):
        return True
    if isinstance(value, dict):
        return any(_holds_exact_number(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_exact_number(item) for item in value)
    return False


def _placeholders(value: Any, exact: list[str], token: str) -> Any:
    """`value` with each ExactNumber replaced by the string `token:n`, its text appended to `exact`."""
    if isinstance(value, ExactNumber):
        exact.append(str(value))
        return f"{token}:{len(exact) - 1}"
    if isinstance(value, dict):
        return {key: _placeholders(item, exact, token) for key, item in value.items()}
    if isinstance(value, list):
        return [_placeholders(item, exact, token) for item in value]
    return value
