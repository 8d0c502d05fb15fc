import base64
import json
from pathlib import Path

import pytest
from dagster import instance_for_test

from mds_assets.resources import MDSSettings

from .alerts import webhook  # noqa: F401  (a fixture: the alert sensors' webhook receiver)

FIELDS = ["uid", "text", "blob:base64", "n:int64", "meta:json"]


def record(batch: int, number: int) -> dict:
    return {
        "uid": f"{batch}-{number}",
        "text": f"sample {number} of batch {batch} ✓",
        "blob": base64.b64encode(bytes([batch, number % 256]) * (number % 7 + 1)).decode(),
        "n": batch * 1000 + number,
        "meta": {"batch": batch, "tags": ["a", number]},
        "extra": "dropped",
    }


def write_batch(raw: Path, name: str, records: list[dict]) -> Path:
    raw.mkdir(parents=True, exist_ok=True)
    path = raw / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def raw_dir(tmp_path) -> Path:
    raw = tmp_path / "raw"
    for batch in range(3):
        write_batch(raw, f"batch-{batch}.jsonl", [record(batch, n) for n in range(40)])
    return raw


@pytest.fixture
def settings(raw_dir, tmp_path) -> MDSSettings:
    # partition_bytes=1: every file a partition of its own, so these tests name a partition by its
    # file; groups of files are tested in test_partition_groups.py
    return MDSSettings(
        raw_url=str(raw_dir), out_url=str(tmp_path / "out"), fields=FIELDS, shard_size_limit=1000, partition_bytes=1
    )


@pytest.fixture
def instance(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with instance_for_test(temp_dir=str(home)) as instance:
        yield instance


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` with its bytes, by relative path."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def without_build_times(files: dict[str, bytes]) -> dict[str, bytes]:
    """A snapshot with each partition's stamp without its `built_at` (when, not what, it was built)."""
    for name, data in files.items():
        if name.endswith("/mds_source.json"):
            stamp = json.loads(data)
            assert isinstance(stamp.pop("built_at"), float)
            files[name] = json.dumps(stamp).encode()
    return files
