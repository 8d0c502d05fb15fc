"""JSON numbers kept exactly as written, from the raw line to the stored `json` field.

The fast line parser (orjson) turns an integer outside the 64-bit range into a float, and every
parser turns a decimal number into the nearest double, which changes it when it has more
significant digits than a double holds exactly (16 or more). So a line keeps orjson's result
unless that holds a float (a walk over the record, cheap) and the line has a run of 16 digits
or dots; such a line is parsed again here, by Python's `json`: integers as Python ints (exact
at any size), and a decimal number that no double holds exactly as an `ExactNumber` carrying
its value, which the `json` encoding writes back as written.
"""

from __future__ import annotations

import json
import secrets
from decimal import Decimal
from typing import Any

_DIGITS_AS_NUL = bytes.maketrans(b"0123456789.", b"\x00" * 11)
_SIXTEEN = b"\x00" * 16  # a valid JSON line holds no raw NUL byte: only digits and dots become NULs


def may_not_fit_a_double(line: bytes) -> bool:
    """The line has a run of 16 digits or dots: a number with 16 or more significant digits
    (the shortest such number, written as few as the digits need) shows one."""
    return _SIXTEEN in line.translate(_DIGITS_AS_NUL)


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
