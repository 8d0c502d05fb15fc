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


def test_a_dataset_that_cannot_be_read_back_is_never_called_unchanged_or_empty(tmp_path, monkeypatch):
    from writer.published import describe_change, read_state

    with StreamingDatasetWriter(str(tmp_path / "ds"), ["a"]) as writer:
        writer.write_sample({"a": b"x"})
    before = read_state(Storage(str(tmp_path / "ds")))

    def unreachable(self):
        raise ConnectionError("Could not connect to the endpoint URL")

    monkeypatch.setattr(Storage, "list_names", unreachable)
    after = read_state(Storage(str(tmp_path / "ds")))
    message = describe_change(str(tmp_path / "ds"), before, after, None)
    assert "could not be read back (ConnectionError: Could not connect" in message
    assert "unchanged" not in message and "no dataset" not in message
