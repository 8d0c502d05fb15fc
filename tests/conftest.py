import os
from pathlib import Path

import pytest

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

SHARED = Path(__file__).resolve().parents[2] / "shared"
if not SHARED.exists():  # CI clones the repo beside a copy of shared/
    SHARED = Path(__file__).resolve().parents[1].parent / "shared"
VECTORS = SHARED / "vectors"


@pytest.fixture
def vectors() -> Path:
    assert VECTORS.is_dir(), f"reference vectors not found at {VECTORS}"
    return VECTORS
