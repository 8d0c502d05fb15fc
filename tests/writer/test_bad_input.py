"""Bad input gets an error naming the sample and field, and never corrupts what was written."""

import os

import pytest

from writer import MDSDataset, StreamingDatasetWriter


@pytest.fixture
def writer(tmp_path):
    writer = StreamingDatasetWriter(str(tmp_path), ["uid", "data"], shard_size_limit=64)
    for number in range(5):
        writer.write_sample({"uid": b"%d" % number, "data": b"x" * 20})
    return writer


@pytest.mark.parametrize(
    "bad_sample, error, message",
    [
        ({"uid": b"5"}, KeyError, "sample 5 has no field 'data'"),
        ({"uid": b"5", "data": "text"}, TypeError, "sample 5, field 'data': expected bytes.*got str"),
        ({"uid": 5, "data": b""}, TypeError, "sample 5, field 'uid': expected bytes.*got int"),
        ({"uid": b"5", "data": None}, TypeError, "sample 5, field 'data'.*got NoneType"),
        ([b"5", b"x"], TypeError, "sample 5 is a list, not a mapping"),
        (None, TypeError, "sample 5 is a NoneType"),
    ],
)
def test_a_bad_sample_raises_naming_it_and_keeps_the_writer_usable(tmp_path, writer, bad_sample, error, message):
    with pytest.raises(error, match=message):
        writer.write_sample(bad_sample)
    writer.write_sample({"uid": b"5", "data": b"after"})
    writer.finish()
    samples = list(MDSDataset(str(tmp_path)))
    assert [sample["uid"] for sample in samples] == [b"0", b"1", b"2", b"3", b"4", b"5"]
    assert samples[-1]["data"] == b"after"


def test_bytes_like_values_are_accepted(tmp_path):
    import array

    wide = memoryview(array.array("i", [1, 2]))  # 2 items, 8 bytes
    with StreamingDatasetWriter(str(tmp_path), ["a", "b", "c"]) as writer:
        writer.write_sample({"a": bytearray(b"ab"), "b": memoryview(b"cd"), "c": wide})
    assert list(MDSDataset(str(tmp_path))) == [{"a": b"ab", "b": b"cd", "c": wide.tobytes()}]


def test_writing_after_finish_raises(tmp_path):
    writer = StreamingDatasetWriter(str(tmp_path), ["uid"])
    writer.finish()
    with pytest.raises(RuntimeError, match="finished"):
        writer.write_sample({"uid": b"late"})
    with pytest.raises(RuntimeError, match="finished"):
        writer.finish()


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        ({"fields": []}, ValueError, "fields is empty"),
        ({"fields": ["a", "a"]}, ValueError, "repeated: a"),
        ({"fields": ["a", ""]}, ValueError, "non-empty strings"),
        ({"fields": "uid"}, TypeError, "list of field names"),
        ({"shard_size_limit": 0}, ValueError, "must be positive, got 0"),
        ({"shard_size_limit": -5}, ValueError, "must be positive"),
        ({"shard_size_limit": 1.5}, TypeError, "must be an int"),
        ({"compression": "zstd"}, ValueError, "unknown compression 'zstd'"),
        ({"compression": "gz:10"}, ValueError, "bad compression level"),
        ({"compression": "gz:x"}, ValueError, "bad compression level"),
    ],
)
def test_bad_arguments_raise_before_any_file_is_created(tmp_path, arguments, error, message):
    target = tmp_path / "never"
    with pytest.raises(error, match=message):
        StreamingDatasetWriter(str(target), **{"fields": ["a"], **arguments})
    assert not target.exists()


@pytest.mark.parametrize("compression", ["gz", "gz:0", "gz:9"])
def test_every_gz_level_is_accepted(tmp_path, compression):
    with StreamingDatasetWriter(str(tmp_path), ["a"], compression=compression) as writer:
        writer.write_sample({"a": b"hello"})
    assert (tmp_path / "compression.txt").read_text() == "gz\n"
    assert os.path.exists(tmp_path / "index.mds.gz")
