import os
from pathlib import Path

import pytest

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

SHARED = Path(__file__).resolve().parents[2] / "shared"  # shared/ lies beside the repo (CI: beside its clone)
VECTORS = SHARED / "vectors"


@pytest.fixture
def vectors() -> Path:
    assert VECTORS.is_dir(), f"reference vectors not found at {VECTORS}"
    return VECTORS
