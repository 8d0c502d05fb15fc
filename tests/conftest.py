import os
from pathlib import Path

import pytest

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

VECTORS = Path(__file__).resolve().parent / "data" / "vectors"  # written by scripts/regenerate_vectors.py


@pytest.fixture
def vectors() -> Path:
    assert VECTORS.is_dir(), f"reference vectors not found at {VECTORS}"
    return VECTORS
