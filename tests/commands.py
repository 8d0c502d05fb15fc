"""The command lines the tests run, written once."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

MDS_ASSETS = [sys.executable, "-m", "mds_assets.cli"]  # `mds-assets` in a fresh interpreter


def build_arguments(raw: str | Path, out: str | Path, fields: str | Sequence[str]) -> list[str]:
    """`build --raw RAW --out OUT --fields F1,F2,…` (options go after it)."""
    return [
        "build",
        "--raw",
        str(raw),
        "--out",
        str(out),
        "--fields",
        fields if isinstance(fields, str) else ",".join(fields),
    ]
