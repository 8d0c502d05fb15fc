"""A full disk at the manifest or index step names the file and leaves no half-published metadata."""

import errno

import pytest

from writer import StreamingDatasetWriter
from writer.storage import Storage


@pytest.mark.parametrize("failing", ["mds_manifest.json", "index.mds.gz"])
def test_a_full_disk_while_publishing_the_index_names_the_file_and_leaves_no_metadata(tmp_path, monkeypatch, failing):
    real = Storage.write_atomic

    def disk_full_at(self, name, data):
        if name == failing:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, name, data)

    monkeypatch.setattr(Storage, "write_atomic", disk_full_at)
    with pytest.raises(OSError, match=f"{tmp_path / 'ds' / failing}: .*No space left on device"):
        with StreamingDatasetWriter(str(tmp_path / "ds"), ["a"], compression="gz") as writer:
            writer.write_sample({"a": b"x"})
    left = sorted(path.name for path in (tmp_path / "ds").iterdir())
    assert not {"compression.txt", "mds_manifest.json", "index.mds.gz"} & set(left), left
