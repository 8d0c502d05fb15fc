"""Sizes in bytes as people write them: `16MiB`, `64MB`, `1.5GiB` or a plain number of bytes.

Every size the project asks for (an `MDS_*` variable, a command-line flag) is read here, so
`64MB` means the same everywhere: decimal units are powers of 1000 (kB/KB, MB, GB, TB), binary
units powers of 1024 (KiB, MiB, GiB, TiB); the unit's case does not matter.
"""

from __future__ import annotations

import re
from decimal import Decimal

UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
ALLOWED = "a positive number of bytes, with an optional unit: 16MiB, 64MB, 1.5GiB, 1000000"
_SIZE = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z]*)")


def parse_size(text: str) -> int:
    """Bytes in `text`; a ValueError saying what a size looks like when it is not one (a unit not
    known, zero, a fraction of a byte)."""
    match = _SIZE.fullmatch(text.strip())
    unit = match["unit"].lower() if match else ""
    if match is None or unit not in UNITS:
        raise ValueError(f"{text!r} is not a size; expected {ALLOWED}")
    size = Decimal(match["number"]) * UNITS[unit]
    if size != size.to_integral_value():
        raise ValueError(f"{text!r} is not a whole number of bytes")
    if size <= 0:
        raise ValueError(f"{text!r}: a size must be positive")
    return int(size)


def format_size(size: int) -> str:
    """The shortest exact spelling of `size` (`16MiB`, `64MB`, `1000001`), for defaults in docs and help."""
    for unit in ("TiB", "TB", "GiB", "GB", "MiB", "MB", "KiB", "kB"):
        factor = UNITS[unit.lower()]
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)
