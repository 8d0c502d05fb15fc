"""The reader: random access, decoders, streaming, and clear errors on damaged datasets."""

import pytest

from writer import MDSDataset, StreamingDatasetWriter
from writer.storage import Storage

from .helpers import seed_samples


@pytest.fixture
def dataset_path(tmp_path):
    with StreamingDatasetWriter(str(tmp_path), ["uid", "data"], shard_size_limit=300) as writer:
        writer.write_samples(seed_samples(), use_tqdm=False)
    return tmp_path


def test_decoders_turn_bytes_into_values(dataset_path):
    decoders = {"uid": bytes.decode, "data": lambda value: int.from_bytes(value, "big")}
    dataset = MDSDataset(str(dataset_path), decoders=decoders)
    assert dataset[7] == {"uid": "000007", "data": 21}
    assert dataset[-1] == {"uid": "000099", "data": 297}
    assert [sample["data"] for sample in dataset] == [3 * ix for ix in range(100)]


def test_decoders_for_unknown_fields_are_refused(dataset_path):
    with pytest.raises(KeyError, match="nope"):
        MDSDataset(str(dataset_path), decoders={"nope": bytes.decode})


def test_out_of_range_sample_numbers_raise_index_error(dataset_path):
    dataset = MDSDataset(str(dataset_path))
    with pytest.raises(IndexError, match="sample 100 out of range"):
        dataset[100]
    with pytest.raises(IndexError):
        dataset[-101]


def test_random_access_reads_only_the_sample_not_the_shard(dataset_path, monkeypatch):
    dataset = MDSDataset(f"file://{dataset_path}")
    monkeypatch.setattr(Storage, "read", lambda *args: pytest.fail("read a whole file for one sample"))
    assert dataset[55]["uid"] == b"000055"


def test_gz_random_access_and_iteration(tmp_path):
    with StreamingDatasetWriter(str(tmp_path), ["uid", "data"], shard_size_limit=300, compression="gz:1") as writer:
        writer.write_samples(seed_samples(), use_tqdm=False)
    dataset = MDSDataset(str(tmp_path))
    assert dataset[42]["uid"] == b"000042"
    assert len(list(dataset)) == 100


def test_a_directory_without_index_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no index"):
        MDSDataset(str(tmp_path))


def test_a_missing_shard_names_the_file(dataset_path):
    (dataset_path / "000002.mds").unlink()
    dataset = MDSDataset(str(dataset_path))
    with pytest.raises(FileNotFoundError, match="000002.mds"):
        list(dataset)


def test_a_short_shard_names_the_file_and_sizes(dataset_path):
    shard = dataset_path / "000001.mds"
    shard.write_bytes(shard.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"000001.mds: shard holds \d+ bytes, shorter"):
        list(MDSDataset(str(dataset_path)))


def test_bad_magic_is_named(dataset_path):
    index = dataset_path / "index.mds"
    index.write_bytes(b"\0\0\0\0" + index.read_bytes()[4:])
    with pytest.raises(ValueError, match="bad magic"):
        MDSDataset(str(dataset_path))


def test_trailing_garbage_in_the_index_is_named(dataset_path):
    index = dataset_path / "index.mds"
    index.write_bytes(index.read_bytes() + b"junk")
    with pytest.raises(ValueError, match="4 bytes of trailing garbage"):
        MDSDataset(str(dataset_path))


def test_a_truncated_index_is_named(dataset_path):
    index = dataset_path / "index.mds"
    index.write_bytes(index.read_bytes()[:30])
    with pytest.raises(ValueError, match="truncated"):
        MDSDataset(str(dataset_path))


def test_a_record_whose_header_disagrees_with_the_index_is_named(dataset_path):
    shard = dataset_path / "000000.mds"
    data = bytearray(shard.read_bytes())
    data[0] = 7  # the first record's uid size: 6 -> 7
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="000000.mds, sample 0: record header"):
        MDSDataset(str(dataset_path))[0]
