"""File-tree (ImageFolder) batches: which files are samples, and the label each one gets."""

from pathlib import Path

import pytest
from fsspec.implementations.local import LocalFileSystem

from mds_assets.core.raw_sources import IMG_EXTENSIONS, RawDataError, list_batches, read_records


def _tree(root: Path, files: dict[str, bytes]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def test_hidden_files_and_folders_and_non_images_are_not_samples(tmp_path: Path) -> None:
    _tree(
        tmp_path / "pets",
        {
            "cats/1.png": b"cat",
            "cats/.DS_Store": b"finder",
            "cats/.ipynb_checkpoints/1-checkpoint.png": b"old cat",
            ".ipynb_checkpoints/dogs/2.png": b"old dog",
            ".DS_Store": b"finder",
            "README.txt": b"about these pictures",
            "dogs/notes.txt": b"not a picture",
            "dogs/2.JPEG": b"dog",
        },
    )
    (batch,) = list_batches(str(tmp_path))
    paths = [record["path"] for _, record in read_records(batch)]
    assert paths == ["cats/1.png", "dogs/2.JPEG"]


def test_a_nested_sample_is_labelled_by_its_top_level_class_folder(tmp_path: Path) -> None:
    _tree(tmp_path / "pets", {"cats/tabby/young/1.png": b"kitten", "cats/2.jpg": b"cat", "3.png": b"unsorted"})
    (batch,) = list_batches(str(tmp_path))
    labels = {record["path"]: record["label"] for _, record in read_records(batch)}
    assert labels == {"3.png": "", "cats/2.jpg": "cats", "cats/tabby/young/1.png": "cats"}


def test_files_that_are_not_samples_leave_the_fingerprint_and_size_alone(tmp_path: Path) -> None:
    _tree(tmp_path / "pets", {"cats/1.png": b"cat"})
    (before,) = list_batches(str(tmp_path))
    _tree(tmp_path / "pets", {"cats/.DS_Store": b"finder state", "README.txt": b"hello"})
    (after,) = list_batches(str(tmp_path))
    assert (after.fingerprint, after.size) == (before.fingerprint, before.size) == (before.fingerprint, 3)


def test_the_sample_extensions_are_torchvisions() -> None:
    assert IMG_EXTENSIONS == (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@pytest.mark.parametrize("part", ["part-00000-1f2e.c000.json", "part-00000-1f2e.c000.json.gz", "rows.csv"])
def test_a_folder_a_dataframe_library_wrote_is_refused_naming_its_files(tmp_path: Path, part: str) -> None:
    _tree(tmp_path / "export.jsonl", {part: b'{"uid": "a"}\n', "_SUCCESS": b"", ".part-00000.crc": b"crc"})
    (batch,) = list_batches(str(tmp_path))  # Spark's `df.write.json("export.jsonl")` is a folder
    with pytest.raises(RawDataError, match=f"batch export.jsonl: a folder with no images but 1 data file \\({part}\\)"):
        list(read_records(batch))


def test_an_empty_folder_and_one_of_other_files_are_still_empty_batches(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _tree(tmp_path / "notes", {"README.txt": b"nothing here yet", ".hidden/old.jsonl": b"{}\n"})
    assert [list(read_records(batch)) for batch in list_batches(str(tmp_path))] == [[], []]


def _unreadable(monkeypatch: pytest.MonkeyPatch, folder: str) -> None:
    """`folder` cannot be listed, as a folder of another user's with mode 700 (the tests may run as root)."""
    listing = LocalFileSystem.ls

    def ls(self: LocalFileSystem, path: str, detail: bool = False, **kwargs: object) -> object:
        if path.rstrip("/").endswith(folder):
            raise PermissionError(13, "Permission denied", path)
        return listing(self, path, detail=detail, **kwargs)

    monkeypatch.setattr(LocalFileSystem, "ls", ls)


def test_a_folder_that_cannot_be_listed_refuses_its_batch_naming_it_not_read_as_no_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path / "pets", {"cats/1.png": b"cat", "dogs/2.png": b"dog"})
    (listed,) = list_batches(str(tmp_path))
    _unreadable(monkeypatch, "cats")
    for batch in (listed, *list_batches(str(tmp_path))):  # listed before, or as it is now
        with pytest.raises(RawDataError) as refused:
            list(read_records(batch))
        assert (
            "batch pets" in str(refused.value)
            and "cats" in str(refused.value)
            and "Permission denied" in str(refused.value)
        )
