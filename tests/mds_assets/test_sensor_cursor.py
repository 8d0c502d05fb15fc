"""The raw-batch sensor at scale: a cursor that does not grow with the files listed, and one new file
among 100,000 requested alone. (How long a tick takes is benchmarks/many_small_files.py's to show.)"""

import json

import pytest
from dagster import SensorResult, build_sensor_context

from mds_assets import sensors
from mds_assets.core.raw_sources import RawBatch
from mds_assets.resources import MDSSettings

FILES = 100_000


def listed(count: int, prefix: str = "hour") -> list[RawBatch]:
    """A listing held in memory (the storage's own listing time is the benchmark's to measure)."""
    return [
        RawBatch(f"{prefix}-{n:06}.jsonl", f"/raw/{prefix}-{n:06}.jsonl", "jsonl", f"{n:x}", 1600) for n in range(count)
    ]


@pytest.fixture
def raw_listing(monkeypatch) -> list[RawBatch]:
    files = listed(FILES)
    monkeypatch.setattr(sensors, "list_batches", lambda url, options=None: sorted(files, key=lambda b: b.partition_key))
    return files


@pytest.fixture
def settings(tmp_path) -> MDSSettings:
    return MDSSettings(raw_url="/raw", out_url=str(tmp_path / "out"), fields=["uid"])


def tick(instance, settings: MDSSettings, cursor: str | None) -> SensorResult:
    context = build_sensor_context(instance=instance, cursor=cursor, resources={"mds_settings": settings})
    result = sensors.raw_batch_sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def requested_keys(result: SensorResult) -> list[str]:
    return [
        json.dumps(
            sorted(
                {b.get("partition") or b["name"] for b in r.run_config["ops"]["batch_pipeline"]["config"]["batches"]}
            )
        )
        for r in result.run_requests
    ]


def test_the_cursor_does_not_grow_with_the_files_listed(instance, settings, raw_listing):
    first = tick(instance, settings, None)
    partitions = sum(len(json.loads(keys)) for keys in requested_keys(first))
    assert partitions < FILES / 50  # small files share partitions
    assert len(first.cursor) < 100 * partitions  # an entry per partition waiting to be built, none per file
    unchanged = tick(instance, settings, first.cursor)
    assert unchanged.run_requests == []
    assert unchanged.cursor == first.cursor


def test_one_new_file_among_100000_is_requested_alone(instance, settings, raw_listing):
    first = tick(instance, settings, None)
    raw_listing.append(RawBatch("hour-050000a.jsonl", "/raw/hour-050000a.jsonl", "jsonl", "new", 1600))
    after = tick(instance, settings, first.cursor)
    (keys,) = requested_keys(after)  # one run: the new file's group; the groups still queued are not asked twice
    (key,) = json.loads(keys)
    listing = after.run_requests[0].run_config["ops"]["batch_pipeline"]["config"]["batches"]
    assert "hour-050000a.jsonl" in [b["name"] for b in listing] and {b["partition"] for b in listing} == {key}


def test_changed_settings_request_every_partition_again(instance, settings, raw_listing):
    first = tick(instance, settings, None)
    gz = MDSSettings(**{**settings.model_dump(), "compression": "gz"})
    again = tick(instance, gz, first.cursor)
    assert sorted(requested_keys(again)) == sorted(requested_keys(first))


def test_a_cursor_of_another_form_is_read_as_none(instance, settings, monkeypatch):
    files = listed(20)
    monkeypatch.setattr(sensors, "list_batches", lambda url, options=None: files)
    per_file = json.dumps({b.partition_key: b.fingerprint for b in files})
    result = tick(instance, settings, per_file)
    assert len(result.run_requests) == 1 and json.loads(result.cursor)["listing"]
