"""What we write reads in Composer's own format code, and what it writes reads in ours."""

import gzip
from pathlib import Path

import numpy as np
import pytest

from writer import MDSDataset, StreamingDatasetWriter

from .composer_reference import composer_format


@pytest.fixture(scope="module")
def composer():
    return composer_format()


def read_with_composer(composer, directory: Path) -> list[dict[str, bytes]]:
    """Composer's StreamingDataset path: (gunzip as its download does), load the index, locate and split."""

    def local(name):
        if (directory / name).exists():
            return (directory / name).read_bytes()
        return gzip.decompress((directory / f"{name}.gz").read_bytes())

    index = composer.StreamingDatasetIndex.loads(local("index.mds"))
    shards, offsets = index._locate_samples()
    samples = []
    for sample_number, (shard, offset) in enumerate(zip(shards, offsets)):
        data = local(composer.get_shard_basename(int(shard)))
        size = int(index.bytes_per_sample[sample_number])
        samples.append(composer.bytes_to_sample_dict(data[offset : offset + size], index.fields))
    return samples


def write(directory, samples, **arguments):
    with StreamingDatasetWriter(str(directory), ["uid", "data"], **arguments) as writer:
        writer.write_samples(samples, use_tqdm=False)


@pytest.mark.parametrize("arguments", [{}, {"compression": "gz"}, {"shard_size_limit": 300}])
def test_composer_reads_what_we_write(composer, tmp_path, arguments):
    samples = [{"uid": b"%06d" % n, "data": bytes([n % 256]) * (n % 50)} for n in range(200)]
    write(tmp_path, samples, **arguments)
    assert read_with_composer(composer, tmp_path) == samples


def test_composer_reads_sizes_we_store_wider_than_it_would(composer, tmp_path):
    samples = [{"uid": b"a", "data": bytes(size)} for size in (5, 200, 40000, 7)]  # int8 would wrap
    write(tmp_path, samples)
    assert read_with_composer(composer, tmp_path) == samples


def test_composer_reads_an_oversized_sample_in_its_own_shard(composer, tmp_path):
    samples = [{"uid": b"big", "data": bytes(500)}, {"uid": b"s", "data": b"1"}, {"uid": b"t", "data": b"2"}]
    write(tmp_path, samples, shard_size_limit=100)
    assert read_with_composer(composer, tmp_path) == samples


def test_we_read_an_index_composer_writes(composer, tmp_path):
    samples = [{"uid": b"%d" % n, "data": b"x" * n} for n in range(10)]
    records = [composer.sample_dict_to_bytes(sample, ["uid", "data"]) for sample in samples]
    (tmp_path / "000000.mds").write_bytes(b"".join(records[:6]))
    (tmp_path / "000001.mds").write_bytes(b"".join(records[6:]))
    index = composer.StreamingDatasetIndex(
        np.array([6, 4], np.int64),
        np.array([len(b"".join(records[:6])), len(b"".join(records[6:]))], np.int64),
        np.array([len(r) for r in records], np.int64),
        ["uid", "data"],
    )
    (tmp_path / "index.mds").write_bytes(index.dumps())
    assert list(MDSDataset(str(tmp_path))) == samples


@pytest.mark.parametrize("compression", [None, "gz"])
def test_composers_own_writer_writes_what_we_write(tmp_path, compression):
    """Composer 0.10.1's StreamingDatasetWriter (the benchmark's baseline), same samples: the same shards
    and index. Sizes 20..100 B (int8 holds them, where the original wraps) and no sample at a shard's
    exact limit (where the original's rotation rule differs from the format's)."""
    from .composer_reference import composer_writer

    samples = [
        {"uid": b"%06d" % number, "data": bytes([number % 256]) * (number % 81), "other": b"x"} for number in range(300)
    ]
    theirs = composer_writer().StreamingDatasetWriter(str(tmp_path / "composer"), ["uid", "data"], 4099, compression)
    theirs.write_samples(samples, use_tqdm=False)
    theirs.finish()
    write(tmp_path / "ours", samples, shard_size_limit=4099, compression=compression)

    def files(directory):
        return {
            path.name: gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            for path in sorted(directory.iterdir())
            if path.name != "mds_manifest.json"
        }

    ours = files(tmp_path / "ours")
    assert len(ours) > 3
    assert ours == files(tmp_path / "composer")
