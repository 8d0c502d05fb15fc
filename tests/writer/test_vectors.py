"""Same samples and arguments as the original writer -> the same files, byte for byte."""

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from writer import StreamingDatasetWriter

from .helpers import digest, many_samples, seed_samples

REFERENCE_DIGESTS = {
    "seed": "6447790e274509166b630af222f9ee209e1a27459a0e40c35be87b4d8bf0a2f9",
    "seed-gz": "6447790e274509166b630af222f9ee209e1a27459a0e40c35be87b4d8bf0a2f9",
    "many": "a77dad84dce9ee3e64cbd4c1f8ef1a073cdd470465065c8a175eb1fa54a0a6f6",
    "empty": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
}


def assert_same_files(written, reference, ignore=("mds_manifest.json",)):
    names = sorted(path.name for path in written.iterdir() if path.name not in ignore)
    assert names == sorted(path.name for path in reference.iterdir() if path.name not in ignore)
    for name in names:
        ours, theirs = (written / name).read_bytes(), (reference / name).read_bytes()
        if name.endswith(".gz"):
            ours, theirs = gzip.decompress(ours), gzip.decompress(theirs)
        assert ours == theirs, f"{name} differs from the reference"


def test_the_reference_datasets_are_what_composers_writer_writes(tmp_path, vectors):
    """scripts/regenerate_vectors.py, run with Composer 0.10.1's writer, gives back the files kept in the repository."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "regenerate_vectors.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True, timeout=300, capture_output=True)
    for name in REFERENCE_DIGESTS:
        assert_same_files(tmp_path / name, vectors / name)


def test_seed_matches_the_original_byte_for_byte(tmp_path, vectors):
    with StreamingDatasetWriter(str(tmp_path / "seed"), ["uid", "data"]) as writer:
        writer.write_samples(seed_samples(), use_tqdm=False)
    assert_same_files(tmp_path / "seed", vectors / "seed")
    assert writer.samples_per_shard == [100] and writer.bytes_per_shard == [2600]


def test_gz_matches_the_original_decompressed(tmp_path, vectors):
    with StreamingDatasetWriter(str(tmp_path / "gz"), ["uid", "data"], compression="gz") as writer:
        writer.write_samples(seed_samples(), use_tqdm=False)
    assert_same_files(tmp_path / "gz", vectors / "seed-gz")


def test_many_matches_the_original_shard_rotation(tmp_path, vectors):
    with StreamingDatasetWriter(str(tmp_path / "many"), ["uid", "payload"], shard_size_limit=4096) as writer:
        writer.write_samples(many_samples(vectors), use_tqdm=False)
    assert writer.samples_per_shard == [67, 67, 65, 65, 36]
    assert_same_files(tmp_path / "many", vectors / "many", ignore=("mds_manifest.json", "samples.jsonl"))


def test_empty_dataset_matches_the_original(tmp_path, vectors):
    StreamingDatasetWriter(str(tmp_path / "empty"), ["uid", "data"]).finish()
    assert_same_files(tmp_path / "empty", vectors / "empty")
    assert (tmp_path / "empty" / "index.mds").stat().st_size == 51


@pytest.mark.parametrize("name", sorted(REFERENCE_DIGESTS))
def test_reader_reads_every_reference_dataset(vectors, name):
    assert digest(str(vectors / name)) == REFERENCE_DIGESTS[name]


def test_what_we_write_reads_back_to_the_reference_digest(tmp_path, vectors):
    with StreamingDatasetWriter(f"memory://{tmp_path}/many", ["uid", "payload"], shard_size_limit=4096) as writer:
        writer.write_samples(many_samples(vectors), use_tqdm=False)
    assert digest(f"memory://{tmp_path}/many") == REFERENCE_DIGESTS["many"]
