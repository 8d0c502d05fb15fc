"""Where we deliberately differ from the original: size widths and oversized samples."""

import struct

from writer import MDSDataset, StreamingDatasetWriter
from writer import format as mds


def write(url, payload_sizes, limit=1 << 24):
    with StreamingDatasetWriter(url, ["a"], shard_size_limit=limit) as writer:
        writer.write_samples(({"a": bytes(size)} for size in payload_sizes), use_tqdm=False)
    return writer


def stored_size_format(path):
    return mds.decode_index((path / "index.mds").read_bytes()).size_format


def test_sizes_up_to_127_are_stored_as_int8(tmp_path):
    write(str(tmp_path), [10, 119])  # records of 18 and 127 bytes
    assert stored_size_format(tmp_path) == 1


def test_a_129_byte_sample_is_stored_as_int16_not_wrapped(tmp_path):
    write(str(tmp_path), [10, 121])  # records of 18 and 129 bytes; the original stores -127
    assert stored_size_format(tmp_path) == 2
    assert [len(sample["a"]) for sample in MDSDataset(str(tmp_path))] == [10, 121]


def test_sizes_past_int16_and_int32_get_wider(tmp_path):
    assert mds.narrowest_size_format(32767) == 2
    assert mds.narrowest_size_format(32768) == 4
    assert mds.narrowest_size_format(2**31) == 8
    write(str(tmp_path), [1, 40000])
    assert stored_size_format(tmp_path) == 4


def test_equal_sizes_are_stored_once(tmp_path):
    write(str(tmp_path), [5, 5, 5])
    index = mds.decode_index((tmp_path / "index.mds").read_bytes())
    assert index.size_format == 0 and list(index.sample_sizes) == [13, 13, 13]


def test_an_oversized_sample_goes_alone_into_its_own_shard(tmp_path):
    # records of 58, 208, 58, 100 (== limit) and 38 bytes with a limit of 100
    writer = write(str(tmp_path), [50, 200, 50, 92, 30], limit=100)
    assert writer.samples_per_shard == [1, 1, 1, 1, 1]
    assert writer.bytes_per_shard == [58, 208, 58, 100, 38]
    assert (tmp_path / "000001.mds").stat().st_size == 208


def test_a_first_oversized_sample_writes_no_empty_shard(tmp_path):
    writer = write(str(tmp_path), [500, 1, 1], limit=100)
    assert writer.samples_per_shard == [1, 2]
    assert (tmp_path / "000000.mds").stat().st_size == 508


def forge_original_index(samples_per_shard, bytes_per_shard, size_format, stored_sizes, fields):
    """An index as the original writer lays it out, with whatever (possibly wrapped) sizes it stored."""
    typecode = {1: "b", 2: "h"}[size_format]
    names = [field.encode() for field in fields]
    return b"".join(
        [
            struct.pack("<IIIqq", mds.MAGIC, 1, len(samples_per_shard), sum(samples_per_shard), sum(bytes_per_shard)),
            struct.pack(f"<{len(samples_per_shard)}q", *samples_per_shard),
            struct.pack(f"<{len(bytes_per_shard)}q", *bytes_per_shard),
            struct.pack("<i", size_format),
            struct.pack(f"<{len(stored_sizes)}{typecode}", *stored_sizes),
            struct.pack(f"<i{len(names)}i", len(names), *map(len, names)),
            *names,
        ]
    )


def records(payloads):
    return b"".join(struct.pack("<q", len(payload)) + payload for payload in payloads)


def test_reader_repairs_int8_sizes_the_original_wrapped(tmp_path):
    payloads = [b"x" * 10, b"y" * 121, b"z" * 200]  # records of 18, 129, 208 bytes
    sizes = [18, 129, 208]
    wrapped = [size - 256 if size > 127 else size for size in sizes]  # what the original stores
    (tmp_path / "000000.mds").write_bytes(records(payloads))
    (tmp_path / "index.mds").write_bytes(forge_original_index([3], [sum(sizes)], 1, wrapped, ["a"]))
    dataset = MDSDataset(str(tmp_path))
    assert dataset.repaired_sizes
    assert [sample["a"] for sample in dataset] == payloads
    assert dataset[1]["a"] == payloads[1]


def test_reader_repairs_int16_sizes_the_original_wrapped(tmp_path):
    payloads = [b"a", b"b" * 40000]
    sizes = [9, 40008]
    (tmp_path / "000000.mds").write_bytes(records(payloads))
    (tmp_path / "index.mds").write_bytes(forge_original_index([2], [sum(sizes)], 2, [9, 40008 - 65536], ["a"]))
    assert [sample["a"] for sample in MDSDataset(str(tmp_path))] == payloads


def test_reader_reads_the_originals_empty_first_shard(tmp_path):
    payloads = [b"q" * 200, b"r"]
    (tmp_path / "000000.mds").write_bytes(b"")
    (tmp_path / "000001.mds").write_bytes(records(payloads[:1]))
    (tmp_path / "000002.mds").write_bytes(records(payloads[1:]))
    (tmp_path / "index.mds").write_bytes(forge_original_index([0, 1, 1], [0, 208, 9], 1, [208 - 256, 9], ["a"]))
    dataset = MDSDataset(str(tmp_path))
    assert len(dataset) == 2
    assert [dataset[0]["a"], dataset[1]["a"]] == payloads
    assert [sample["a"] for sample in dataset] == payloads
