"""The constructor: malformed compression and field names refused before anything is created; default threads capped."""

import os

import pytest

from writer import StreamingDatasetWriter
from writer.compression import parse_compression


@pytest.mark.parametrize("value", ["gz:", "gz:09", "gz:\u0663", "gz:10", "gz:-1", "gz: 1", "gz:1 ", "gz::1", "GZ"])
def test_malformed_compression_is_refused_naming_the_allowed_values(tmp_path, value):
    with pytest.raises(ValueError, match=r"allowed: None, 'gz' or 'gz:0' \.\.\. 'gz:9'"):
        parse_compression(value)
    with pytest.raises(ValueError, match="allowed"):
        StreamingDatasetWriter(str(tmp_path / "ds"), ["uid"], compression=value)
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("value", [None, "gz", *(f"gz:{level}" for level in range(10))])
def test_every_allowed_compression_is_accepted(value):
    compression = parse_compression(value)
    assert compression.is_none == (value is None)
    if value is not None:
        assert compression.name == (value if ":" in value else "gz:6")


def test_a_field_name_that_is_not_utf8_is_refused_by_the_constructor(tmp_path):
    with pytest.raises(ValueError, match=r"field name '\\ud800'.*UTF-8"):
        StreamingDatasetWriter(str(tmp_path / "ds"), ["uid", "\ud800"])
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("cpus, expected", [(None, 2), (1, 2), (2, 2), (3, 3), (4, 4), (64, 4)])
def test_the_default_worker_threads_are_capped(tmp_path, monkeypatch, cpus, expected):
    """At most 4 threads (and so 5 shards in flight) by default, however many cores the machine has."""
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    writer = StreamingDatasetWriter(str(tmp_path / "ds"), ["uid"])
    try:
        assert writer.workers == expected
        assert writer._pipeline._executor._max_workers == expected
    finally:
        writer.abort()


def test_workers_given_are_taken_as_given(tmp_path):
    writer = StreamingDatasetWriter(str(tmp_path / "ds"), ["uid"], workers=16)
    try:
        assert writer.workers == 16
    finally:
        writer.abort()
